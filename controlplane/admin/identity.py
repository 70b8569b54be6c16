"""Users, memberships, API keys and process access rules.

A tenant administrator adds users to their tenant (the user and the membership in one form),
edits the accounts that belong to their tenants alone, the memberships and keys of their
members and their tenant's access rules; never an operator's account, superuser status,
groups or Django permissions, another tenant, or anonymous access (a server-wide choice).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from controlplane.admin.scope import (
    ALL,
    AdminScope,
    AuditedAdmin,
    HonuaAdmin,
    TenantScopedAdmin,
    admin_scope,
    members_of,
    user_managed_by,
)
from controlplane.models import ApiKey, Membership, ProcessAccess, Tenant
from controlplane.models.identity import ANONYMOUS, Audience, Role
from controlplane.services.auth import api_key_create, api_key_revoke, membership_set
from controlplane.services.policy import policy_cache_clear

User = get_user_model()


@admin.register(Membership)
class MembershipAdmin(HonuaAdmin):
    list_display = ("user", "tenant", "role", "is_active", "created_at")
    list_filter = ("role", "is_active", "tenant")
    search_fields = ("user__username", "tenant__slug")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("user",)
    tenant_admin_can = ALL

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A membership is of one user in one tenant; another pair is another membership.
        return ("user", "tenant", "created_at") if obj is not None else ()

    def tenant_admin_may_change(self, request: HttpRequest, obj: Membership) -> bool:
        return not obj.user.is_superuser  # an operator's membership is the operator's

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        policy_cache_clear()  # roles decide access rules


@admin.register(ApiKey)
class ApiKeyAdmin(HonuaAdmin):
    """Keys are made by the service (only the hash is stored; the key is shown once, on the
    page after "Save") and revoked by an action; neither secret nor hash can be edited."""

    list_display = ("name", "prefix", "tenant", "user", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("tenant", "revoked_at")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("tenant", "user")
    readonly_fields = ("prefix", "created_at", "revoked_at", "last_used_at")
    autocomplete_fields = ("user",)
    actions = ["revoke_keys"]
    tenant_admin_can = ALL
    audit_actions = frozenset({"change", "delete"})  # api_key_create audits new keys
    audit_exclude = ("last_used_at",)
    audit_secrets = ("key_sha256",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        editable = ("tenant", "user", "name", "expires_at")
        return editable if obj is None else (*editable, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields if obj is None else ("tenant", "user", *self.readonly_fields)

    def tenant_admin_may_change(self, request: HttpRequest, obj: ApiKey) -> bool:
        return not obj.user.is_superuser

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = api_key_create(
            tenant_id=obj.tenant_id, user_id=obj.user_id, name=obj.name, expires_at=obj.expires_at,
            actor=request.user.get_username(),
        )
        obj.pk, obj.prefix, obj.key_sha256, obj.created_at = key.pk, key.prefix, key.key_sha256, key.created_at
        obj._state.adding = False
        request._honua_api_key = raw  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        """After "Save": the key, once (it exists only in this response)."""
        raw = getattr(request, "_honua_api_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "key": obj, "raw": raw, "opts": self.model._meta,
                   "title": "API key created"}
        response = TemplateResponse(request, "admin/controlplane/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = [key for key in queryset.select_related("user") if self.has_change_permission(request, key)]
        done = sum(api_key_revoke(key_id=key.pk, actor=request.user.get_username()) for key in keys)
        self.message_user(request, f"Revoked {done} key(s).")


@admin.register(ProcessAccess)
class ProcessAccessAdmin(HonuaAdmin):
    list_display = ("tenant", "process_id", "audience", "allowed", "updated_at")
    list_filter = ("tenant", "audience", "allowed")
    search_fields = ("process_id",)
    tenant_admin_can = ALL

    def tenant_admin_may_change(self, request: HttpRequest, obj: ProcessAccess) -> bool:
        return obj.audience != ANONYMOUS  # whether anonymous callers run anything is the operator's call

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "audience" and not admin_scope(request).operator:
            kwargs["choices"] = [(v, label) for v, label in Audience.choices if v != ANONYMOUS]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ProcessAccess, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        policy_cache_clear()

    def delete_model(self, request: HttpRequest, obj: ProcessAccess) -> None:
        super().delete_model(request, obj)
        policy_cache_clear()


# --- users -------------------------------------------------------------------------------------


class MemberCreationForm(AdminUserCreationForm):
    """A new user, made a member of a tenant in the same save."""

    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), required=False, help_text="Make the new user a member of this tenant."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR.value, required=False)
    tenants: QuerySet[Tenant] = Tenant.objects.none()  # set per request by the admin
    tenant_required = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["tenant"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = self.tenants
        field.required = self.tenant_required


TENANT_ADMIN_USER_FIELDSETS = (
    (None, {"fields": ("username", "password")}),
    ("Personal info", {"fields": ("first_name", "last_name", "email")}),
    ("Access", {
        "fields": ("is_active", "is_staff"),
        "description": "A staff user who is an admin member of a tenant administers it here.",
    }),
    ("Important dates", {"fields": ("last_login", "date_joined")}),
)


class HonuaUserAdmin(TenantScopedAdmin, AuditedAdmin, UserAdmin):
    """Django's user admin, scoped and audited. A tenant administrator sees their members,
    adds users to their tenants and edits the accounts that belong to their tenants alone:
    names, e-mail, password, active and staff status, nothing else."""

    add_form = MemberCreationForm
    add_fieldsets = (
        *UserAdmin.add_fieldsets,
        ("Membership", {"fields": ("tenant", "role")}),
    )
    tenant_admin_can = ALL
    audit_exclude = ("last_login",)  # signing in is not an admin change
    audit_secrets = ("password",)

    def tenant_filter(self, queryset: QuerySet[Any], scope: AdminScope) -> QuerySet[Any]:
        return queryset.filter(pk__in=members_of(scope.tenant_ids).values("pk"))

    def tenant_admin_may_change(self, request: HttpRequest, obj: Any) -> bool:
        return user_managed_by(admin_scope(request), obj)

    def audit_object_type(self) -> str:
        return "user"

    def audit_tenant_id(self, request: HttpRequest, obj: Any) -> int | None:
        memberships = Membership.objects.filter(user_id=obj.pk)
        scope = admin_scope(request)
        if not scope.operator:
            memberships = memberships.filter(tenant_id__in=scope.tenant_ids)
        return memberships.order_by("tenant_id").values_list("tenant_id", flat=True).first()

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or admin_scope(request).operator:
            return super().get_fieldsets(request, obj)
        return TENANT_ADMIN_USER_FIELDSETS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or admin_scope(request).operator:
            return super().get_readonly_fields(request, obj)
        return ("last_login", "date_joined")

    def get_list_filter(self, request: HttpRequest) -> Any:
        return super().get_list_filter(request) if admin_scope(request).operator else ("is_staff", "is_active")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            return form
        scope = admin_scope(request)
        tenants = Tenant.objects.all() if scope.operator else Tenant.objects.filter(pk__in=scope.tenant_ids)
        return type(form.__name__, (form,), {"tenants": tenants, "tenant_required": not scope.operator})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        tenant = None if change else form.cleaned_data.get("tenant")
        if tenant is not None:
            membership_set(
                username=obj.get_username(), tenant_slug=tenant.slug, role=form.cleaned_data["role"] or Role.EDITOR,
                actor=request.user.get_username(),
            )

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        with transaction.atomic():  # the password and its audit event, together
            return super().user_change_password(request, id, form_url)


admin.site.unregister(User)
admin.site.register(User, HonuaUserAdmin)
