"""Tenants, their per-process policy overrides, and the revisions of both.

A tenant's policy (``Tenant.policy`` and all its overrides) has one version,
``Tenant.policy_version``, raised by every change to either; runs record it. Changes go
through ``controlplane/services/policy_versions.py``, which keeps a ``PolicyRevision``.
"""

from __future__ import annotations

from django.db import models

from controlplane.contracts import ExecutionMode, ResourceClass, Tier


class Tenant(models.Model):
    """An organisation using Honua; every run, layer and artifact belongs to one."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    policy = models.JSONField(default=dict, blank=True, help_text="Quotas and limits (see README).")
    policy_version = models.PositiveIntegerField(
        default=1, help_text="Raised by every change to the policy or to one of its overrides."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


# The override fields an operator's save records as the bounds of tenant administrators' edits.
OPERATOR_BOUND_FIELDS = ("enabled", "tier_order", "resource_class", "cost_cap")


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
    cost_cap = models.FloatField(
        null=True, blank=True, help_text="Largest estimated cost (units) of one run; above it, refused."
    )
    version = models.PositiveIntegerField(default=1, help_text="The tenant's policy version of the last change.")
    # Set by every save of an operator; a tenant administrator's edits stay within it.
    operator_bounds = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="What the operator last set (enabled, tier_order, resource_class, cost_cap): the "
        "bounds of tenant administrators' edits. Empty: made by a tenant administrator.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "process_id"], name="override_tenant_process_uniq"),
            models.CheckConstraint(
                condition=models.Q(cost_cap__isnull=True) | models.Q(cost_cap__gte=0),
                name="override_cost_cap_nonneg",
            ),
            models.CheckConstraint(
                condition=models.Q(operator_bounds__isnull=True)
                | models.Q(operator_bounds__has_keys=list(OPERATOR_BOUND_FIELDS)),
                name="override_bounds_complete",
            ),
            # A process the operator turned off for the tenant stays off.
            models.CheckConstraint(
                condition=~models.Q(operator_bounds__enabled=False) | models.Q(enabled=False),
                name="override_operator_off_stays_off",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}:{self.process_id}"

    @staticmethod
    def valid_tiers() -> set[str]:
        return {t.value for t in Tier}


class PolicyRevision(models.Model):
    """One change to a tenant's policy or to one of its overrides, with the values before
    and after; ``version`` is the tenant policy version the change produced."""

    class Kind(models.TextChoices):
        TENANT = "tenant"
        OVERRIDE = "override"

    # No index of its own: the unique constraint below leads with tenant.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="policy_revisions", db_index=False
    )
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    process_id = models.CharField(max_length=100, blank=True, help_text="The override's process.")
    before = models.JSONField(null=True, blank=True, help_text="Empty: created.")
    after = models.JSONField(null=True, blank=True, help_text="Empty: deleted.")
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="policyrev_tenant_version_uniq"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["tenant", "override"]), name="policyrev_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="tenant", process_id="") | (models.Q(kind="override") & ~models.Q(process_id="")),
                name="policyrev_process_matches_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(before__isnull=False) | models.Q(after__isnull=False),
                name="policyrev_has_a_side",
            ),
        ]

    def __str__(self) -> str:
        what = f" {self.process_id}" if self.process_id else ""
        return f"{self.tenant_id} v{self.version} {self.kind}{what}"
