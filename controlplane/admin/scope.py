"""Who may do what in the admin, and the audit of every change made there.

The permission model has two roles, decided per request (``admin_scope``):

- **Operators** are active superusers: every model and every tenant, as Django allows.
- **Tenant administrators** are active staff users with an active ``admin`` membership of an
  active tenant. Each ModelAdmin declares what they may do with its rows
  (``tenant_admin_can``: view, add, change, delete) and where a row's tenant is
  (``tenant_field``); they see only their tenants' rows (anyone else's answer 404), pick only
  their tenants and their members in forms, and per-row rules
  (``tenant_admin_may_change``) keep operators' accounts and bounds out of their reach.

Anyone else with staff status sees nothing of Honua. Django's per-user model permissions are
not consulted for Honua's models (nor for users): the two roles are the whole model.

Every add, change and delete through a ModelAdmin here is an ``AuditEvent`` with the changed
fields before and after, written in the transaction of the change (the admin's own
``LogEntry`` is still written too). ModelAdmins whose saves go through a service that audits
(policy, GP services, new API keys) leave those actions to it (``audit_actions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from controlplane.contracts import Principal
from controlplane.models import Membership, Tenant
from controlplane.models.identity import Role
from controlplane.services.audit import audit_change, audit_snapshot

ALL = frozenset({"view", "add", "change", "delete"})
VIEW = frozenset({"view"})


@dataclass(frozen=True)
class AdminScope:
    """The requesting user's role in the admin."""

    operator: bool
    tenant_ids: frozenset[int]  # tenants a tenant administrator administers

    @property
    def tenant_admin(self) -> bool:
        return not self.operator and bool(self.tenant_ids)


def admin_scope(request: HttpRequest) -> AdminScope:
    """The scope of the request's user (read once per request)."""
    scope = getattr(request, "_honua_admin_scope", None)
    if isinstance(scope, AdminScope):
        return scope
    user = request.user
    if not user.is_active:
        scope = AdminScope(operator=False, tenant_ids=frozenset())
    elif user.is_superuser:
        scope = AdminScope(operator=True, tenant_ids=frozenset())
    else:
        ids = (
            Membership.objects.filter(
                user_id=user.pk, role=Role.ADMIN, is_active=True, tenant__is_active=True
            ).values_list("tenant_id", flat=True)
            if user.is_staff
            else []
        )
        scope = AdminScope(operator=False, tenant_ids=frozenset(ids))
    request._honua_admin_scope = scope  # type: ignore[attr-defined]
    return scope


def admin_principal(request: HttpRequest, tenant_slug: str) -> Principal:
    """The admin user acting in a tenant: as an admin of it (operators act as one anywhere)."""
    user = request.user
    return Principal(
        tenant=tenant_slug, user_id=user.pk, username=user.get_username(), roles=(Role.ADMIN.value,)
    )


def members_of(tenant_ids: frozenset[int]) -> QuerySet[Any]:
    """Users with a membership of one of the tenants."""
    return get_user_model().objects.filter(
        pk__in=Membership.objects.filter(tenant_id__in=tenant_ids).values("user_id")
    )


def manageable_members(scope: AdminScope) -> QuerySet[Any]:
    """The members a tenant administrator may pick (for memberships, keys): not operators."""
    return members_of(scope.tenant_ids).filter(is_superuser=False)


def user_managed_by(scope: AdminScope, user: Any) -> bool:
    """May the scope change this account? A tenant administrator: only accounts that belong
    to their tenants alone and carry no rights beyond memberships (no superuser, groups or
    Django permissions), so that taking one over gains nothing they lack."""
    if scope.operator:
        return True
    if not scope.tenant_admin or user.pk is None or user.is_superuser:
        return False
    if user.groups.exists() or user.user_permissions.exists():
        return False
    memberships = Membership.objects.filter(user_id=user.pk)
    return memberships.exists() and not memberships.exclude(tenant_id__in=scope.tenant_ids).exists()


class TenantScopedAdmin(admin.ModelAdmin):
    """Operators: Django's defaults. Tenant administrators: ``tenant_admin_can`` on their
    tenants' rows. Anyone else: nothing."""

    tenant_field: str | None = "tenant"  # the lookup of a row's tenant; None: not tenant data
    tenant_admin_can: frozenset[str] = frozenset()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        scope = admin_scope(request)
        if scope.operator:
            return queryset
        if not scope.tenant_admin or not self.tenant_admin_can:
            return queryset.none()
        return self.tenant_filter(queryset, scope)

    def tenant_filter(self, queryset: QuerySet[Any], scope: AdminScope) -> QuerySet[Any]:
        if self.tenant_field is None:
            return queryset.none()
        return queryset.filter(**{f"{self.tenant_field}__in": scope.tenant_ids})

    def in_scope(self, request: HttpRequest, obj: Any) -> bool:
        return obj.pk is not None and self.get_queryset(request).filter(pk=obj.pk).exists()

    def tenant_admin_may_change(self, request: HttpRequest, obj: Any) -> bool:
        """Per-row rule on top of the tenant scope (e.g. not an operator's account)."""
        return True

    def tenant_admin_may_delete(self, request: HttpRequest, obj: Any) -> bool:
        return self.tenant_admin_may_change(request, obj)

    def _tenant_admin_may(self, request: HttpRequest, action: str) -> bool:
        return admin_scope(request).tenant_admin and action in self.tenant_admin_can

    def has_module_permission(self, request: HttpRequest) -> bool:
        scope = admin_scope(request)
        if scope.operator:
            return super().has_module_permission(request)
        return scope.tenant_admin and bool(self.tenant_admin_can)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if admin_scope(request).operator:
            return super().has_view_permission(request, obj)
        may = self._tenant_admin_may(request, "view") or self._tenant_admin_may(request, "change")
        return may and (obj is None or self.in_scope(request, obj))

    def has_add_permission(self, request: HttpRequest) -> bool:
        if admin_scope(request).operator:
            return super().has_add_permission(request)
        return self._tenant_admin_may(request, "add")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if admin_scope(request).operator:
            return super().has_change_permission(request, obj)
        if not self._tenant_admin_may(request, "change"):
            return False
        return obj is None or (self.in_scope(request, obj) and self.tenant_admin_may_change(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if admin_scope(request).operator:
            return super().has_delete_permission(request, obj)
        if not self._tenant_admin_may(request, "delete"):
            return False
        return obj is None or (self.in_scope(request, obj) and self.tenant_admin_may_delete(request, obj))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not admin_scope(request).operator:
            # Another tenant's row answers as one that does not exist.
            raise Http404("no such object")
        return obj

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        scope = admin_scope(request)
        if not scope.operator:
            if db_field.related_model is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=scope.tenant_ids)
            elif db_field.related_model is get_user_model():
                kwargs["queryset"] = manageable_members(scope)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_autocomplete_fields(self, request: HttpRequest) -> tuple[str, ...]:
        # A tenant administrator picks from a plain list of their members.
        return tuple(super().get_autocomplete_fields(request)) if admin_scope(request).operator else ()

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if admin_scope(request).operator:
            return filters
        # The tenant filter would list every tenant.
        return [f for f in filters if f != "tenant"]


class AuditedAdmin(admin.ModelAdmin):
    """Audits every add, change and delete with the changed fields before and after."""

    audit_actions: frozenset[str] = frozenset({"create", "change", "delete"})
    audit_exclude: tuple[str, ...] = ("updated_at",)
    audit_secrets: tuple[str, ...] = ()

    def audit_object_type(self) -> str:
        return str(self.model._meta.model_name)

    def audit_tenant_id(self, request: HttpRequest, obj: Any) -> int | None:
        tenant_id = getattr(obj, "tenant_id", None)
        return int(tenant_id) if tenant_id is not None else None

    def audit_values(self, obj: Any) -> dict[str, Any]:
        return audit_snapshot(obj, exclude=self.audit_exclude)

    def _audit(
        self, request: HttpRequest, obj: Any, action: str,
        before: dict[str, Any] | None, after: dict[str, Any] | None, tenant_id: int | None,
    ) -> None:
        audit_change(
            action=f"{self.audit_object_type()}.{action}", object_type=self.audit_object_type(),
            object_id=str(obj.pk), before=before, after=after, actor=request.user.get_username(),
            tenant_id=tenant_id, secrets=self.audit_secrets, detail="admin",
        )

    def _stash(self, request: HttpRequest) -> dict[tuple[str, str], dict[str, Any]]:
        stash = getattr(request, "_honua_audit_before", None)
        if stash is None:
            stash = {}
            request._honua_audit_before = stash  # type: ignore[attr-defined]
        return stash

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and "change" in self.audit_actions:
            # The row as it was, before the form changes the instance.
            self._stash(request)[(self.model._meta.label, str(obj.pk))] = self.audit_values(obj)
        return obj

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_addition(request, obj, message)
        if "create" in self.audit_actions:
            self._audit(request, obj, "create", None, self.audit_values(obj), self.audit_tenant_id(request, obj))
        return logged

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_change(request, obj, message)
        if "change" in self.audit_actions:
            before = self._stash(request).pop((self.model._meta.label, str(obj.pk)), {})
            self._audit(request, obj, "change", before, self.audit_values(obj), self.audit_tenant_id(request, obj))
        return logged

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        if "delete" not in self.audit_actions:
            super().delete_model(request, obj)
            return
        with transaction.atomic():
            before, tenant_id, pk = self.audit_values(obj), self.audit_tenant_id(request, obj), obj.pk
            super().delete_model(request, obj)
            obj.pk = pk  # Django clears it on delete
            self._audit(request, obj, "delete", before, None, tenant_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """One by one, each audited, all or none (the bulk delete action is not atomic)."""
        with transaction.atomic():
            for obj in queryset:
                if not self.has_delete_permission(request, obj):
                    raise PermissionDenied
                self.delete_model(request, obj)


class HonuaAdmin(TenantScopedAdmin, AuditedAdmin):
    """The base of Honua's ModelAdmins: scoped to the user's role, every change audited."""


class ReadOnlyAdmin(HonuaAdmin):
    """A ledger: viewed, never changed in the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


