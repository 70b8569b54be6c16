"""Process definitions loaded from the YAML catalog, versioned."""

from __future__ import annotations

from django.db import models

from controlplane.contracts import ExecutionMode, ResourceClass


class ProcessDefinition(models.Model):
    """One version of a catalog process. YAML fields are read-only; operational fields editable."""

    process_id = models.CharField(max_length=100)
    version = models.CharField(max_length=40)
    revision = models.PositiveIntegerField(default=1, help_text="Increments with every YAML change.")
    is_current = models.BooleanField(default=True)
    spec = models.JSONField(help_text="The YAML document as loaded.")
    spec_sha256 = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    # Operational fields (operators edit these in the admin).
    enabled = models.BooleanField(default=True)
    tier_order = models.JSONField(default=list)
    resource_class = models.CharField(max_length=20, choices=[(r.value, r.value) for r in ResourceClass])
    default_mode = models.CharField(max_length=8, choices=[(m.value, m.value) for m in ExecutionMode])
    limits = models.JSONField(default=dict, blank=True)
    is_public = models.BooleanField(default=True, help_text="Listed and runnable by every tenant.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["process_id", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["process_id", "revision"], name="procdef_id_revision_uniq"),
            models.UniqueConstraint(
                fields=["process_id"], condition=models.Q(is_current=True), name="procdef_one_current"
            ),
            models.CheckConstraint(
                condition=models.Q(default_mode__in=[m.value for m in ExecutionMode]),
                name="procdef_default_mode_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(resource_class__in=[r.value for r in ResourceClass]),
                name="procdef_resource_class_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.process_id} {self.version} (r{self.revision})"
