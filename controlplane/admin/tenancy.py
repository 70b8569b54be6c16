"""Tenants and their policy: saved through the versioned policy services, which audit them."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from controlplane.admin.scope import ALL, VIEW, HonuaAdmin, ReadOnlyAdmin, admin_scope
from controlplane.exceptions import HonuaError
from controlplane.models import (
    PolicyRevision,
    ProcessDefinition,
    Tenant,
    TenantPolicyOverride,
    TenantUsage,
)
from controlplane.services.policy_versions import (
    override_validate,
    override_within_bounds,
    policy_override_delete,
    policy_override_save,
    tenant_policy_validate,
    tenant_save,
)


class TenantForm(forms.ModelForm):
    def clean_policy(self) -> Any:
        policy = self.cleaned_data.get("policy")
        try:
            tenant_policy_validate(policy)
        except HonuaError as exc:
            raise forms.ValidationError(exc.message) from exc
        return policy


@admin.register(Tenant)
class TenantAdmin(HonuaAdmin):
    """Operators manage tenants; a tenant administrator sees their own (quotas included)."""

    form = TenantForm
    list_display = ("slug", "name", "is_active", "policy_version", "created_at")
    search_fields = ("slug", "name")
    list_filter = ("is_active",)
    readonly_fields = ("policy_version",)
    tenant_field = "pk"
    tenant_admin_can = VIEW
    audit_exclude = ("policy", "policy_version")  # the policy services audit those

    def audit_tenant_id(self, request: HttpRequest, obj: Tenant) -> int | None:
        return obj.pk

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        tenant_save(tenant=obj, actor=request.user.get_username())  # versions policy changes


def _process_choices(current: str = "") -> list[tuple[str, str]]:
    """The current catalog processes (and ``current``, kept when it was retired)."""
    rows = ProcessDefinition.objects.filter(is_current=True).order_by("process_id").values_list("process_id", "title")
    choices = [(pid, f"{pid} ({title})") for pid, title in rows]
    if current and current not in {pid for pid, _ in choices}:
        choices.append((current, f"{current} (not in the catalog)"))
    return choices


class TenantPolicyOverrideForm(forms.ModelForm):
    delegated = False  # a tenant administrator's form: within the operator's bounds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("process_id")
        if field is not None:
            self.fields["process_id"] = forms.ChoiceField(
                label=field.label, help_text=field.help_text, choices=_process_choices(self.instance.process_id)
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The stored override with the submitted values (fields the user may not edit keep theirs).
        candidate = copy.copy(self.instance)
        for name, value in cleaned.items():
            setattr(candidate, name, value)
        try:
            override_validate(candidate)
            if self.delegated:
                bounds = self.instance.operator_bounds if self.instance.pk else None
                override_within_bounds(candidate, bounds=bounds)
        except HonuaError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(TenantPolicyOverride)
class TenantPolicyOverrideAdmin(HonuaAdmin):
    """Operators set overrides freely (their values become the bounds); a tenant administrator
    changes their tenant's within those bounds and removes only the ones they made."""

    form = TenantPolicyOverrideForm
    list_display = (
        "tenant", "process_id", "enabled", "tier_order", "preferred_mode", "resource_class", "cost_cap",
        "set_by_operator", "version",
    )
    list_filter = ("tenant", "enabled")
    search_fields = ("process_id",)
    readonly_fields = ("version", "operator_bounds")
    tenant_admin_can = ALL
    audit_actions = frozenset()  # policy_versions audits every change

    @admin.display(description="operator's", boolean=True)
    def set_by_operator(self, override: TenantPolicyOverride) -> bool:
        return override.operator_bounds is not None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("tenant",) if obj is not None else ()  # an override stays with its tenant
        if admin_scope(request).operator:
            return (*fixed, *self.readonly_fields)
        mine = ("resource_class", "process_id") if obj is not None else ("resource_class",)
        return (*fixed, *mine, *self.readonly_fields)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"delegated": not admin_scope(request).operator})

    def tenant_admin_may_delete(self, request: HttpRequest, obj: TenantPolicyOverride) -> bool:
        return obj.operator_bounds is None

    def save_model(self, request: HttpRequest, obj: TenantPolicyOverride, form: Any, change: bool) -> None:
        policy_override_save(
            override=obj, actor=request.user.get_username(), delegated=not admin_scope(request).operator
        )

    def delete_model(self, request: HttpRequest, obj: TenantPolicyOverride) -> None:
        policy_override_delete(
            override_id=obj.pk, actor=request.user.get_username(), delegated=not admin_scope(request).operator
        )


@admin.register(PolicyRevision)
class PolicyRevisionAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "version", "kind", "process_id", "actor", "created_at")
    list_filter = ("tenant", "kind")
    search_fields = ("process_id", "actor")
    tenant_admin_can = VIEW


@admin.register(TenantUsage)
class TenantUsageAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "period", "period_start", "cost_units", "runs", "updated_at")
    list_filter = ("tenant", "period")
    tenant_admin_can = VIEW
