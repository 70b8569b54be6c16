"""Admin registrations: the ledger is read-only; actions go through the control-plane services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from controlplane.exceptions import HonuaError
from controlplane.models import (
    Artifact,
    AuditEvent,
    ProcessDefinition,
    ProcessRun,
    Tenant,
    TenantPolicyOverride,
)
from controlplane.services.runs import run_cancel


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_active", "policy_version", "created_at")
    search_fields = ("slug", "name")
    list_filter = ("is_active",)


@admin.register(TenantPolicyOverride)
class TenantPolicyOverrideAdmin(admin.ModelAdmin):
    list_display = ("tenant", "process_id", "enabled", "tier_order", "preferred_mode", "resource_class", "version")
    list_filter = ("tenant", "enabled")
    search_fields = ("process_id",)


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
