"""The run ledger, its artifacts, uploads and the audit trail: read-only; run actions call
the control plane."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import DurationField, ExpressionWrapper, F, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from controlplane.admin.scope import VIEW, ReadOnlyAdmin, admin_principal, admin_scope
from controlplane.contracts import RunStatus
from controlplane.exceptions import HonuaError
from controlplane.models import Artifact, AuditEvent, ProcessRun, UploadItem
from controlplane.services.rerun import run_rerun
from controlplane.services.runs import run_cancel

PRETTY_LIMIT = 20_000  # characters of a JSON document shown on a page (geometries can be large)
STATUS_COLOURS = {
    RunStatus.QUEUED: "#6c757d",
    RunStatus.WAITING: "#6c757d",
    RunStatus.RUNNING: "#0d6efd",
    RunStatus.CANCELLING: "#0d6efd",
    RunStatus.SUCCEEDED: "#198754",
    RunStatus.FAILED: "#dc3545",
    RunStatus.TIMED_OUT: "#dc3545",
    RunStatus.CANCELLED: "#b8860b",
}


def pretty_json(value: Any) -> SafeString:
    """A JSON value indented in a scrolling block, cut at ``PRETTY_LIMIT`` characters."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > PRETTY_LIMIT:
        text = f"{text[:PRETTY_LIMIT]}\n… ({len(text):,} characters in all)"
    return format_html('<pre style="white-space:pre-wrap;max-height:32em;overflow:auto;margin:0">{}</pre>', text)


@admin.register(ProcessRun)
class ProcessRunAdmin(ReadOnlyAdmin):
    """Runs with filters and the columns operators ask about; cancel and re-run go through
    the control plane (the run services and ``run_submit``)."""

    list_display = (
        "short_id", "process_id", "process_version", "status_badge", "mode", "tier_used", "surface",
        "principal", "duration", "cost_estimated", "cost_actual", "created_at",
    )
    list_filter = ("status", "process_id", "tier_used", "mode", "surface", "resource_class", "tenant")
    search_fields = ("id", "process_id", "principal", "input_hash")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)
    actions = ["cancel_runs", "rerun_runs"]
    tenant_admin_can = VIEW
    pretty = ("tiers_tried_pretty", "inputs_pretty", "request_pretty", "messages_pretty", "outputs_pretty",
              "output_links_pretty", "error_pretty")
    readonly_fields = ("duration", *pretty)
    fieldsets = (
        (None, {"fields": (
            "id", "tenant", "user", "principal", "surface", "process_id", "process_version", "definition",
            "definition_revision", "policy_version", "mode", "status", "resource_class",
        )}),
        ("Progress", {"fields": ("progress", "progress_message", "messages_pretty")}),
        ("Tiers", {"fields": ("tier_order", "tier_used", "tiers_tried_pretty")}),
        ("Timing and cost", {"fields": (
            "created_at", "started_at", "finished_at", "duration", "cost_estimated", "cost_actual",
            "attempt_count", "max_attempts", "lease_owner", "lease_expires_at", "cancel_requested_at",
        )}),
        ("Inputs", {"fields": (
            "input_hash", "input_bytes", "feature_count", "vertex_count", "inputs_pretty", "request_pretty",
        )}),
        ("Results", {"fields": (
            "outputs_pretty", "output_links_pretty", "error_pretty", "results_expire_at", "results_removed_at",
            "dismissed_at",
        )}),
        ("Notifications and tracing", {"fields": ("subscriber", "callbacks", "trace_parent")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProcessRun]:
        return super().get_queryset(request).defer("inputs", "outputs")

    def get_list_display(self, request: HttpRequest) -> Any:
        scope = admin_scope(request)
        shown = list(super().get_list_display(request))
        if scope.operator or len(scope.tenant_ids) > 1:
            shown.insert(1, "tenant")
        return shown

    @admin.display(description="id", ordering="id")
    def short_id(self, run: ProcessRun) -> str:
        return str(run.id)[:8]

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: ProcessRun) -> SafeString:
        colour = STATUS_COLOURS.get(RunStatus(run.status), "#6c757d")
        return format_html(
            '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;white-space:nowrap">{}</span>',
            colour, run.status,
        )

    @admin.display(
        description="duration (s)",
        ordering=ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField()),
    )
    def duration(self, run: ProcessRun) -> str:
        if run.started_at and run.finished_at:
            return f"{(run.finished_at - run.started_at).total_seconds():.3f}"
        return "-"

    @admin.display(description="tiers tried")
    def tiers_tried_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.tiers_tried)

    @admin.display(description="inputs")
    def inputs_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.inputs)

    @admin.display(description="request")
    def request_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.request)

    @admin.display(description="messages")
    def messages_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.messages)

    @admin.display(description="outputs")
    def outputs_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.outputs)

    @admin.display(description="output links")
    def output_links_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.output_links)

    @admin.display(description="error")
    def error_pretty(self, run: ProcessRun) -> SafeString:
        return pretty_json(run.error)

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

    @admin.action(description="Re-run selected runs (same inputs, async, as you)")
    def rerun_runs(self, request: HttpRequest, queryset: QuerySet[ProcessRun]) -> None:
        made = []
        for run_id, tenant_id, slug in queryset.values_list("id", "tenant_id", "tenant__slug"):
            try:
                result = run_rerun(run_id=run_id, tenant_id=tenant_id, principal=admin_principal(request, slug))
            except HonuaError as exc:
                self.message_user(request, f"{run_id}: not re-run: {exc.message}", messages.WARNING)
                continue
            made.append(f"{run_id} -> {result.run_id} ({result.status.value})")
        if made:
            self.message_user(request, f"Re-ran {len(made)} run(s): " + "; ".join(made), messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "object_type", "object_id", "actor", "tenant")
    list_filter = ("action", "object_type", "tenant")
    search_fields = ("object_id", "actor", "detail")
    date_hierarchy = "at"
    tenant_admin_can = VIEW
    readonly_fields = ("before_pretty", "after_pretty")
    fields = ("at", "tenant", "actor", "action", "object_type", "object_id", "before_pretty", "after_pretty", "detail")

    @admin.display(description="before")
    def before_pretty(self, event: AuditEvent) -> SafeString:
        return pretty_json(event.before)

    @admin.display(description="after")
    def after_pretty(self, event: AuditEvent) -> SafeString:
        return pretty_json(event.after)


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "media_type", "size", "tenant", "run", "created_at", "expires_at")
    list_filter = ("media_type", "store", "tenant")
    search_fields = ("id", "name", "sha256")
    tenant_admin_can = VIEW


@admin.register(UploadItem)
class UploadItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "item_name", "media_type", "size", "committed", "tenant", "principal", "created_at", "expires_at")
    list_filter = ("committed", "media_type", "tenant")
    search_fields = ("id", "item_name", "sha256")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)
    tenant_admin_can = VIEW
