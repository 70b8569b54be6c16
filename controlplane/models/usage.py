"""Usage counters that admission reads and writes in the transaction that records a run."""

from __future__ import annotations

from django.db import models


class TenantUsage(models.Model):
    """A tenant's estimated cost units and runs admitted in one budget period (UTC)."""

    class Period(models.TextChoices):
        DAY = "day"
        MONTH = "month"

    # No index of its own: the unique constraint below leads with tenant.
    tenant = models.ForeignKey(
        "controlplane.Tenant", on_delete=models.CASCADE, related_name="usage", db_index=False
    )
    period = models.CharField(max_length=5, choices=Period.choices)
    period_start = models.DateField(help_text="First day of the period (UTC).")
    cost_units = models.FloatField(default=0)
    runs = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "-period_start"]
        verbose_name_plural = "tenant usage"
        constraints = [
            # Admission upserts on exactly these columns (ON CONFLICT): keep them unique.
            models.UniqueConstraint(fields=["tenant", "period", "period_start"], name="usage_tenant_period_uniq"),
            models.CheckConstraint(condition=models.Q(period__in=["day", "month"]), name="usage_period_valid"),
            models.CheckConstraint(condition=models.Q(cost_units__gte=0), name="usage_cost_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.period} {self.period_start}: {self.cost_units} units"


class TenantRateCounter(models.Model):
    """Runs a tenant started in one second (UTC), while it has a ``runs_per_minute`` quota.

    Admission sums the last 60 counters (a read that does not grow with the tenant's rate)
    and raises the current one in the transaction that records the run; counters older than
    a minute are removed as new ones start.
    """

    # No index of its own: the unique constraint below leads with tenant.
    tenant = models.ForeignKey(
        "controlplane.Tenant", on_delete=models.CASCADE, related_name="rate_counters", db_index=False
    )
    second = models.DateTimeField(help_text="Start of the second.")
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["tenant", "-second"]
        constraints = [
            # Admission upserts on exactly these columns (ON CONFLICT) and sums a range of them.
            models.UniqueConstraint(fields=["tenant", "second"], name="ratecounter_tenant_second_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.second:%H:%M:%S}: {self.runs} runs"
