"""Admin registrations: the ledger is read-only; actions go through the control-plane services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from controlplane.exceptions import HonuaError
from controlplane.models import (
    ApiKey,
    Artifact,
    AuditEvent,
    GPService,
    GPServiceTask,
    Membership,
    PolicyRevision,
    ProcessAccess,
    ProcessDefinition,
    ProcessRun,
    Tenant,
    TenantPolicyOverride,
    TenantUsage,
    UploadItem,
)
from controlplane.services.auth import api_key_create, api_key_revoke
from controlplane.services.gpservices import gpservice_audit_change, gpservice_snapshot
from controlplane.services.policy import policy_cache_clear
from controlplane.services.policy_versions import (
    override_validate,
    policy_override_delete,
    policy_override_save,
    tenant_policy_validate,
    tenant_save,
)
from controlplane.services.runs import run_cancel


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TenantForm(forms.ModelForm):
    def clean_policy(self) -> Any:
        policy = self.cleaned_data.get("policy")
        try:
            tenant_policy_validate(policy)
        except HonuaError as exc:
            raise forms.ValidationError(exc.message) from exc
        return policy


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = ("slug", "name", "is_active", "policy_version", "created_at")
    search_fields = ("slug", "name")
    list_filter = ("is_active",)
    readonly_fields = ("policy_version",)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        tenant_save(tenant=obj, actor=request.user.get_username())  # versions policy changes


class TenantPolicyOverrideForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        candidate = TenantPolicyOverride(**{k: v for k, v in cleaned.items() if k != "tenant"})
        try:
            override_validate(candidate)
        except HonuaError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(TenantPolicyOverride)
class TenantPolicyOverrideAdmin(admin.ModelAdmin):
    form = TenantPolicyOverrideForm
    list_display = ("tenant", "process_id", "enabled", "tier_order", "preferred_mode", "resource_class", "version")
    list_filter = ("tenant", "enabled")
    search_fields = ("process_id",)
    readonly_fields = ("version",)

    def save_model(self, request: HttpRequest, obj: TenantPolicyOverride, form: Any, change: bool) -> None:
        policy_override_save(override=obj, actor=request.user.get_username())  # versioned

    def delete_model(self, request: HttpRequest, obj: TenantPolicyOverride) -> None:
        policy_override_delete(override_id=obj.pk, actor=request.user.get_username())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TenantPolicyOverride]) -> None:
        for override_id in queryset.values_list("pk", flat=True):
            policy_override_delete(override_id=override_id, actor=request.user.get_username())


@admin.register(PolicyRevision)
class PolicyRevisionAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "version", "kind", "process_id", "actor", "created_at")
    list_filter = ("tenant", "kind")
    search_fields = ("process_id", "actor")


@admin.register(TenantUsage)
class TenantUsageAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "period", "period_start", "cost_units", "runs", "updated_at")
    list_filter = ("tenant", "period")


@admin.register(ProcessDefinition)
class ProcessDefinitionAdmin(admin.ModelAdmin):
    list_display = ("process_id", "version", "revision", "is_current", "enabled", "default_mode", "resource_class")
    list_filter = ("is_current", "enabled", "resource_class", "default_mode")
    search_fields = ("process_id", "title")
    readonly_fields = ("process_id", "version", "revision", "is_current", "spec", "spec_sha256", "title", "created_at")
    fields = (
        *readonly_fields,
        "enabled",
        "is_public",
        "tier_order",
        "resource_class",
        "default_mode",
        "limits",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # definitions come from the YAML catalog


@admin.register(ProcessRun)
class ProcessRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "process_id", "status", "mode", "surface", "tier_used", "tenant", "created_at",
        "duration", "cost_actual", "attempt_count",
    )
    list_filter = ("status", "mode", "surface", "tier_used", "resource_class", "tenant", "process_id")
    search_fields = ("id", "process_id", "principal", "input_hash")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)
    actions = ["cancel_runs"]
    exclude = ("inputs", "outputs")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProcessRun]:
        return super().get_queryset(request).defer("inputs", "outputs")

    @admin.display(description="duration (s)")
    def duration(self, run: ProcessRun) -> str:
        if run.started_at and run.finished_at:
            return f"{(run.finished_at - run.started_at).total_seconds():.3f}"
        return "-"

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[ProcessRun]) -> None:
        done = 0
        for run_id, tenant_id in queryset.values_list("id", "tenant_id"):
            try:
                run_cancel(run_id=run_id, tenant_id=tenant_id, actor=request.user.get_username())
                done += 1
            except HonuaError as exc:
                self.message_user(request, f"{run_id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Cancellation requested for {done} run(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "object_type", "object_id", "actor", "tenant")
    list_filter = ("action", "object_type", "tenant")
    search_fields = ("object_id", "actor", "detail")
    date_hierarchy = "at"


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "media_type", "size", "tenant", "run", "created_at", "expires_at")
    list_filter = ("media_type", "store", "tenant")
    search_fields = ("id", "name", "sha256")


def _process_choices() -> list[tuple[str, str]]:
    """Tasks an operator may add: the current, enabled catalog processes."""
    rows = (
        ProcessDefinition.objects.filter(is_current=True, enabled=True)
        .order_by("process_id")
        .values_list("process_id", "title")
    )
    return [(pid, f"{pid} ({title})") for pid, title in rows]


class GPServiceTaskForm(forms.ModelForm):
    process_id = forms.ChoiceField(label="Process", choices=())

    class Meta:
        model = GPServiceTask
        fields = ("process_id", "position")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = _process_choices()
        current = self.instance.process_id if self.instance.pk else ""
        if current and current not in {value for value, _ in choices}:
            # A task whose process was disabled or retired stays editable (and removable).
            choices.append((current, f"{current} (not enabled)"))
        field = self.fields["process_id"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class GPServiceTaskInline(admin.TabularInline):
    model = GPServiceTask
    form = GPServiceTaskForm
    extra = 1
    ordering = ("position", "process_id")


@admin.register(GPService)
class GPServiceAdmin(admin.ModelAdmin):
    """Operators group catalog processes into GP services under folders; every change is
    audited with the service and its tasks before and after."""

    list_display = ("__str__", "folder", "name", "execution_type", "enabled", "task_count", "operator_edited", "updated_at")
    list_filter = ("enabled", "execution_type", "folder", "operator_edited")
    search_fields = ("folder", "name", "description", "tasks__process_id")
    readonly_fields = ("operator_edited", "catalog_sha256", "created_at", "updated_at")
    fields = ("folder", "name", "description", "execution_type", "maximum_records", "enabled", *readonly_fields)
    inlines = [GPServiceTaskInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[GPService]:
        return super().get_queryset(request).annotate(task_total=Count("tasks"))

    @admin.display(description="tasks", ordering="task_total")
    def task_count(self, service: GPService) -> int:
        return int(getattr(service, "task_total", 0))

    def save_model(self, request: HttpRequest, obj: GPService, form: Any, change: bool) -> None:
        before = gpservice_snapshot(GPService.objects.get(pk=obj.pk)) if change and obj.pk else None
        request._honua_gpservice_before = before  # type: ignore[attr-defined]
        obj.operator_edited = True  # sync_catalog leaves it alone from now on
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        gpservice_audit_change(
            service=form.instance,
            before=getattr(request, "_honua_gpservice_before", None),
            actor=request.user.get_username(),
        )
        policy_cache_clear()

    def delete_model(self, request: HttpRequest, obj: GPService) -> None:
        before = gpservice_snapshot(obj)
        super().delete_model(request, obj)
        gpservice_audit_change(service=obj, before=before, actor=request.user.get_username(), deleted=True)
        policy_cache_clear()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[GPService]) -> None:
        for service in queryset:
            self.delete_model(request, service)


@admin.register(UploadItem)
class UploadItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "item_name", "media_type", "size", "committed", "tenant", "principal", "created_at", "expires_at")
    list_filter = ("committed", "media_type", "tenant")
    search_fields = ("id", "item_name", "sha256")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)


# --- identity ----------------------------------------------------------------------------------


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "is_active", "created_at")
    list_filter = ("role", "is_active", "tenant")
    search_fields = ("user__username", "tenant__slug")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("user",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by the service (only the hash is stored; the key is shown once, on the
    page after "Save") and revoked by an action; neither secret nor hash can be edited."""

    list_display = ("name", "prefix", "tenant", "user", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("tenant", "revoked_at")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("tenant", "user")
    readonly_fields = ("prefix", "created_at", "revoked_at", "last_used_at")
    autocomplete_fields = ("user",)
    actions = ["revoke_keys"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        editable = ("tenant", "user", "name", "expires_at")
        return editable if obj is None else (*editable, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields if obj is None else ("tenant", "user", *self.readonly_fields)

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
        done = sum(api_key_revoke(key_id=pk, actor=request.user.get_username())
                   for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"Revoked {done} key(s).")


@admin.register(ProcessAccess)
class ProcessAccessAdmin(admin.ModelAdmin):
    list_display = ("tenant", "process_id", "audience", "allowed", "updated_at")
    list_filter = ("tenant", "audience", "allowed")
    search_fields = ("process_id",)

    def save_model(self, request: HttpRequest, obj: ProcessAccess, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        policy_cache_clear()

    def delete_model(self, request: HttpRequest, obj: ProcessAccess) -> None:
        super().delete_model(request, obj)
        policy_cache_clear()
