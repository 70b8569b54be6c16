"""The ProcessRun ledger and the artifacts runs produce."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from controlplane.contracts import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ExecutionMode,
    ResourceClass,
    RunStatus,
    Surface,
    Tier,
)
from controlplane.models.fields import FastJSONField

_TERMINAL = sorted(s.value for s in TERMINAL_STATUSES)  # sorted: stable migrations
_LEASED = [RunStatus.RUNNING.value, RunStatus.CANCELLING.value]


class ProcessRun(models.Model):
    """Every run, sync or async: the single source of truth for a job."""

    # django-stubs does not model the functional API of Choices enums (typeddjango/django-stubs#729).
    Status = models.TextChoices("Status", [(s.name, s.value) for s in RunStatus])  # type: ignore[call-overload]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: every index below leads with tenant (each index costs every write).
    tenant = models.ForeignKey(
        "controlplane.Tenant", on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    principal = models.CharField(max_length=150)
    surface = models.CharField(max_length=10, choices=[(s.value, s.value) for s in Surface])

    process_id = models.CharField(max_length=100)
    process_version = models.CharField(max_length=40)
    # Definitions are never deleted (retired ones are disabled), so no index for PROTECT checks.
    definition = models.ForeignKey(
        "controlplane.ProcessDefinition", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    definition_revision = models.PositiveIntegerField()
    policy_version = models.PositiveIntegerField(default=1)

    mode = models.CharField(max_length=8, choices=[(m.value, m.value) for m in ExecutionMode])
    status = models.CharField(max_length=12, choices=Status.choices, default=RunStatus.QUEUED.value)
    resource_class = models.CharField(max_length=20, choices=[(r.value, r.value) for r in ResourceClass])

    tier_order = FastJSONField(default=list)
    tiers_tried = FastJSONField(default=list, help_text="[{tier, outcome, reason, at}]")
    tier_used = models.CharField(max_length=12, blank=True, choices=[(t.value, t.value) for t in Tier])

    inputs = FastJSONField()
    input_hash = models.CharField(max_length=64)
    input_bytes = models.PositiveBigIntegerField(default=0)
    feature_count = models.PositiveIntegerField(default=0)
    vertex_count = models.PositiveBigIntegerField(default=0)
    request = FastJSONField(default=dict, help_text="Output requests, response form, SRs, options.")
    subscriber = FastJSONField(null=True, blank=True)
    callbacks = FastJSONField(default=list, blank=True, help_text="Deliveries to subscriber URIs.")
    trace_parent = models.CharField(max_length=64, blank=True)

    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=500, blank=True)
    messages = FastJSONField(default=list, help_text="[{type, text, time}]")

    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    results_removed_at = models.DateTimeField(null=True, blank=True)
    results_expire_at = models.DateTimeField(null=True, blank=True)

    cost_estimated = models.FloatField(default=0)
    cost_actual = models.FloatField(null=True, blank=True)

    outputs = FastJSONField(null=True, blank=True, help_text="Inline outputs by name.")
    output_links = FastJSONField(default=dict, blank=True, help_text="Outputs stored as artifacts.")
    error = FastJSONField(null=True, blank=True, help_text="{code, message, details}")
    # Work running outside Honua (an AWS Batch job): {"runner", "job_id", "outputs_uri", ...}.
    # Such a run's lease belongs to an "external:" owner and never expires.
    external = FastJSONField(null=True, blank=True, help_text="The external job running this run.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="run_tenant_created_idx"),
            models.Index(fields=["tenant", "status", "-created_at"], name="run_tenant_status_idx"),
            models.Index(fields=["tenant", "process_id", "-created_at"], name="run_tenant_process_idx"),
            models.Index(
                fields=["lease_expires_at"], name="run_lease_idx", condition=Q(status__in=_LEASED)
            ),
            models.Index(
                fields=["resource_class", "tenant"],
                name="run_active_class_idx",
                condition=Q(status__in=sorted(s.value for s in ACTIVE_STATUSES)),
            ),
            models.Index(fields=["input_hash"], name="run_input_hash_idx"),
            models.Index(
                fields=["updated_at"],
                name="run_external_idx",
                condition=Q(status__in=_LEASED) & Q(lease_owner__startswith="external:"),
            ),
            models.Index(
                fields=["results_expire_at"],
                name="run_results_expire_idx",
                condition=Q(results_expire_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in RunStatus]), name="run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=[m.value for m in ExecutionMode]), name="run_mode_valid"
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="run_progress_range"),
            models.CheckConstraint(
                condition=~Q(status__in=_TERMINAL) | Q(finished_at__isnull=False),
                name="run_terminal_has_finished_at",
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(status__in=_TERMINAL),
                name="run_finished_at_only_terminal",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=_LEASED)
                | (
                    ~Q(lease_owner="")
                    & (Q(lease_expires_at__isnull=False) | Q(lease_owner__startswith="external:"))
                ),
                name="run_running_has_lease",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.SUCCEEDED.value)
                | Q(outputs__isnull=False)
                | Q(results_removed_at__isnull=False),
                name="run_succeeded_has_outputs",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[RunStatus.FAILED.value, RunStatus.TIMED_OUT.value])
                | Q(error__isnull=False),
                name="run_failed_has_error",
            ),
            models.CheckConstraint(
                condition=Q(started_at__isnull=True)
                | Q(finished_at__isnull=True)
                | Q(finished_at__gte=F("started_at")),
                name="run_finished_after_started",
            ),
            models.CheckConstraint(
                condition=Q(cost_estimated__gte=0) & (Q(cost_actual__isnull=True) | Q(cost_actual__gte=0)),
                name="run_cost_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.process_id} {self.id} [{self.status}]"


class Artifact(models.Model):
    """A stored output: local file under MEDIA_ROOT or an S3 object."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, related_name="artifacts")
    run = models.ForeignKey(ProcessRun, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=200)
    store = models.CharField(max_length=10, default="local")
    key = models.CharField(max_length=500)
    media_type = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["expires_at"], name="artifact_expires_idx"),
            models.Index(fields=["run", "name"], name="artifact_run_name_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["store", "key"], name="artifact_store_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.media_type}, {self.size} B)"
