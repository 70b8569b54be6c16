"""Tenants and their per-process policy overrides."""

from __future__ import annotations

from django.db import models

from controlplane.contracts import ExecutionMode, ResourceClass, Tier


class Tenant(models.Model):
    """An organisation using Honua; every run, layer and artifact belongs to one."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    policy = models.JSONField(default=dict, blank=True, help_text="Quotas and limits (see README).")
    policy_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class TenantPolicyOverride(models.Model):
    """Per tenant and process: tier pinning, preferred mode, resource class, cost cap, enabled."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="overrides")
    process_id = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    tier_order = models.JSONField(default=list, blank=True)
    preferred_mode = models.CharField(
        max_length=8, blank=True, choices=[(m.value, m.value) for m in ExecutionMode]
    )
    resource_class = models.CharField(
        max_length=20, blank=True, choices=[(r.value, r.value) for r in ResourceClass]
    )
    cost_cap = models.FloatField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "process_id"], name="override_tenant_process_uniq"),
            models.CheckConstraint(
                condition=models.Q(cost_cap__isnull=True) | models.Q(cost_cap__gte=0),
                name="override_cost_cap_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}:{self.process_id}"

    @staticmethod
    def valid_tiers() -> set[str]:
        return {t.value for t in Tier}
