"""The audit trail: one row per state change, written in the same transaction."""

from __future__ import annotations

from django.db import models

from controlplane.models.fields import FastJSONField


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    tenant = models.ForeignKey("controlplane.Tenant", null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = FastJSONField(null=True, blank=True)
    after = FastJSONField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["tenant", "-at"], name="audit_tenant_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"
