"""Admission quotas: concurrent runs, runs per minute, a cost budget per period, input limits.

The quotas come from the tenant's policy (``Tenant.policy``, see README "Tenant policy and
quotas") and, for the capacity of each resource class across all tenants, from
``settings.HONUA["CLASS_CAPACITY"]``.

Under concurrency a quota is never exceeded: the check is part of the statement that records
the run. ``runs.run_create`` inserts the run in a CTE over ``honua_quota_admit``
(controlplane/sql/), which takes transaction-scoped advisory locks (the tenant's, then the
class's), counts with a fresh snapshot and decides; the row is inserted only when admitted,
and the locks are held until it commits. So admission costs no extra round trip. A refused
submission records nothing but the refusal's audit event, written afterwards on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from controlplane.contracts import ExecutionMode, ResourceClass
from controlplane.exceptions import InvalidParameterValue, QuotaExceeded
from controlplane.models import TenantRateCounter
from controlplane.services.audit import audit_record

POLICY_KEYS = frozenset(
    {"max_concurrent_runs", "max_concurrent_by_class", "runs_per_minute", "cost_budget", "limits",
     "outbound_allow_hosts"}  # the last one is the SSRF guard's (controlplane/services/outbound.py)
)
# Input limits a tenant policy may tighten per process (admission reads them; the definition's
# own limits stay in force, the stricter value wins).
LIMIT_KEYS = frozenset({"max_bytes", "max_features", "max_vertices"})
BUDGET_PERIODS = ("day", "month")
WHEN_EXHAUSTED = ("async_only", "refuse")
ALL_PROCESSES = "*"
# A concurrency refusal clears as soon as any active run ends: tell clients to come back soon.
CONCURRENCY_RETRY_SECONDS = 2
RATE_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True)
class CostBudget:
    """Estimated cost units a tenant may spend per period, and what happens beyond."""

    units: float
    period: str  # "day" | "month" (UTC)
    when_exhausted: str  # "async_only" | "refuse"


@dataclass(frozen=True)
class TenantQuotas:
    """The quota part of a tenant's policy, parsed once per policy cache load."""

    max_concurrent_runs: int | None = None
    max_concurrent_by_class: Mapping[str, int] = field(default_factory=dict)
    runs_per_minute: int | None = None
    cost_budget: CostBudget | None = None
    limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def process_limits(self, process_id: str) -> dict[str, int]:
        """The tenant's input limits of one process (``"*"`` entries apply to every process)."""
        merged = dict(self.limits.get(ALL_PROCESSES, {}))
        for key, value in self.limits.get(process_id, {}).items():
            merged[key] = min(merged[key], value) if key in merged else value
        return merged


def _count(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameterValue(f"tenant policy: {where} must be a whole number >= {minimum}, not {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameterValue(f"tenant policy: {where} must be an object, not {value!r}")
    return value


def tenant_quotas_parse(policy: Any, *, strict: bool = True) -> TenantQuotas:
    """Parse and check a tenant policy; ``strict`` also refuses unknown keys (a misspelt
    quota would otherwise be silently off). InvalidParameterValue names the problem."""
    policy = _mapping(policy if policy is not None else {}, "the policy")
    unknown = sorted(set(policy) - POLICY_KEYS)
    if strict and unknown:
        raise InvalidParameterValue(
            f"tenant policy: unknown key {unknown[0]!r}; keys are: " + ", ".join(sorted(POLICY_KEYS))
        )
    by_class: dict[str, int] = {}
    for name, value in _mapping(policy.get("max_concurrent_by_class") or {}, "max_concurrent_by_class").items():
        if name not in {c.value for c in ResourceClass}:
            raise InvalidParameterValue(
                f"tenant policy: max_concurrent_by_class: {name!r} is not a resource class; classes are: "
                + ", ".join(c.value for c in ResourceClass)
            )
        by_class[name] = _count(value, f"max_concurrent_by_class.{name}")
    budget = None
    if policy.get("cost_budget") is not None:
        spec = _mapping(policy["cost_budget"], "cost_budget")
        extra = sorted(set(spec) - {"units", "period", "when_exhausted"})
        if extra:
            raise InvalidParameterValue(f"tenant policy: cost_budget: unknown key {extra[0]!r}")
        units = spec.get("units")
        if isinstance(units, bool) or not isinstance(units, int | float) or units < 0:
            raise InvalidParameterValue(f"tenant policy: cost_budget.units must be a number >= 0, not {units!r}")
        period = spec.get("period")
        if period not in BUDGET_PERIODS:
            raise InvalidParameterValue(f"tenant policy: cost_budget.period must be 'day' or 'month', not {period!r}")
        when = spec.get("when_exhausted", "refuse")
        if when not in WHEN_EXHAUSTED:
            raise InvalidParameterValue(
                f"tenant policy: cost_budget.when_exhausted must be 'async_only' or 'refuse', not {when!r}"
            )
        budget = CostBudget(units=float(units), period=period, when_exhausted=when)
    limits: dict[str, dict[str, int]] = {}
    for process_id, values in _mapping(policy.get("limits") or {}, "limits").items():
        entry: dict[str, int] = {}
        for key, value in _mapping(values, f"limits.{process_id}").items():
            if key not in LIMIT_KEYS:
                raise InvalidParameterValue(
                    f"tenant policy: limits.{process_id}: unknown limit {key!r}; limits are: "
                    + ", ".join(sorted(LIMIT_KEYS))
                )
            entry[key] = _count(value, f"limits.{process_id}.{key}", minimum=1)
        limits[process_id] = entry
    return TenantQuotas(
        max_concurrent_runs=(
            _count(policy["max_concurrent_runs"], "max_concurrent_runs")
            if policy.get("max_concurrent_runs") is not None else None
        ),
        max_concurrent_by_class=by_class,
        runs_per_minute=(
            _count(policy["runs_per_minute"], "runs_per_minute")
            if policy.get("runs_per_minute") is not None else None
        ),
        cost_budget=budget,
        limits=limits,
    )


@dataclass(frozen=True)
class QuotaPlan:
    """The quotas that apply to one submission (no database access to build)."""

    tenant_id: int
    tenant: str
    principal: str
    process_id: str
    resource_class: str
    cost: float
    policy_version: int
    max_concurrent_runs: int | None = None
    max_concurrent_in_class: int | None = None
    class_capacity: int | None = None
    runs_per_minute: int | None = None
    cost_budget: CostBudget | None = None

    @property
    def tenant_scoped(self) -> bool:
        return (
            self.max_concurrent_runs is not None
            or self.max_concurrent_in_class is not None
            or self.runs_per_minute is not None
            or self.cost_budget is not None
        )

    @property
    def applies(self) -> bool:
        """Whether admission must lock and count (else it costs nothing)."""
        return self.tenant_scoped or self.class_capacity is not None


def quota_plan(
    *,
    tenant_id: int,
    tenant: str,
    principal: str,
    process_id: str,
    resource_class: str,
    cost: float,
    policy_version: int,
    quotas: TenantQuotas,
) -> QuotaPlan:
    """Which quotas govern this submission: the tenant's policy and the class capacity."""
    capacity = settings.HONUA.get("CLASS_CAPACITY", {}).get(resource_class)
    return QuotaPlan(
        tenant_id=tenant_id,
        tenant=tenant,
        principal=principal,
        process_id=process_id,
        resource_class=resource_class,
        cost=cost,
        policy_version=policy_version,
        max_concurrent_runs=quotas.max_concurrent_runs,
        max_concurrent_in_class=quotas.max_concurrent_by_class.get(resource_class),
        class_capacity=int(capacity) if capacity is not None else None,
        runs_per_minute=quotas.runs_per_minute,
        cost_budget=quotas.cost_budget,
    )


def budget_period_start(period: str, now: datetime) -> date:
    """First day (UTC) of the budget period holding ``now``."""
    today = now.astimezone(UTC).date()
    return today.replace(day=1) if period == "month" else today


def budget_period_end(period: str, now: datetime) -> datetime:
    """When the budget period holding ``now`` ends (UTC midnight)."""
    start = budget_period_start(period, now)
    if period == "month":
        nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    else:
        nxt = start + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC)


_ADMIT_SQL = "SELECT * FROM honua_quota_admit(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


@dataclass(frozen=True)
class QuotaGuard:
    """The admission check of one submission, run by the statement that records the run
    (``runs.run_create``): ``sql`` and ``params`` select the verdict row of
    ``honua_quota_admit``; ``settle`` turns a refusal into QuotaExceeded."""

    plan: QuotaPlan
    sql: str
    params: tuple[Any, ...]
    now: datetime

    def settle(self, row: Sequence[Any]) -> None:
        """Return if admitted; raise QuotaExceeded (HTTP 429) naming the quota if refused."""
        verdict, tenant_active, tenant_class_active, class_active, recent, budget_used = row
        if verdict is None:
            return
        plan = self.plan
        who = f"tenant {plan.tenant!r}"
        limit: float | None
        count: float
        if verdict == "max_concurrent_runs":
            limit, count, retry = plan.max_concurrent_runs, tenant_active, CONCURRENCY_RETRY_SECONDS
            message = f"{who} has {count} active runs; its limit is {limit}"
        elif verdict == "max_concurrent_by_class":
            limit, count, retry = plan.max_concurrent_in_class, tenant_class_active, CONCURRENCY_RETRY_SECONDS
            message = f"{who} has {count} active {plan.resource_class} runs; its limit is {limit}"
        elif verdict == "class_capacity":
            limit, count, retry = plan.class_capacity, class_active, CONCURRENCY_RETRY_SECONDS
            message = f"the {plan.resource_class} resource class is at capacity ({count} of {limit} slots in use)"
        elif verdict == "runs_per_minute":
            assert plan.runs_per_minute is not None
            limit, count = plan.runs_per_minute, recent
            retry = self._rate_retry(recent=recent, limit=plan.runs_per_minute)
            message = f"{who} has started {count} runs in the last minute; its limit is {limit}"
        elif verdict == "cost_budget":
            budget = plan.cost_budget
            assert budget is not None
            limit, count = budget.units, round(budget_used, 3)
            retry = max(1, math.ceil((budget_period_end(budget.period, self.now) - self.now).total_seconds()))
            message = (
                f"the cost budget is exhausted: {who} has used {count:g} of its {limit:g} cost units "
                f"this {budget.period} (this run: {plan.cost:g})"
            )
        else:
            raise ValueError(f"unknown quota verdict {verdict!r}")
        raise QuotaExceeded(
            f"{message}; retry in {retry} s", retry_after=retry, quota=verdict, limit=limit, count=count
        )

    def _rate_retry(self, *, recent: int, limit: int) -> int:
        """Seconds until enough of the tenant's runs of the last minute leave it (their
        per-second counters, oldest first) to admit one more."""
        must_leave = recent - limit + 1
        counters = TenantRateCounter.objects.filter(
            tenant_id=self.plan.tenant_id, second__gt=self.now - RATE_WINDOW
        ).order_by("second")
        left = 0
        for second, runs in counters.values_list("second", "runs"):
            left += runs
            if left >= must_leave:
                return max(1, math.ceil((second + RATE_WINDOW - self.now).total_seconds()))
        return 1  # freed meanwhile


def quota_guard(*, plan: QuotaPlan, waive_budget: bool = False) -> QuotaGuard | None:
    """The admission check for ``runs.run_create``; None when no quota applies (then the run
    is recorded with a plain INSERT). ``waive_budget``: admit past an exhausted budget (its
    policy is async_only and the run is queued)."""
    if not plan.applies:
        return None
    now = timezone.now()
    budget = plan.cost_budget
    params = (
        plan.tenant_id,
        plan.resource_class,
        plan.max_concurrent_runs,
        plan.max_concurrent_in_class,
        plan.class_capacity,
        plan.runs_per_minute,
        now,
        budget.units if budget else None,
        budget.period if budget else None,
        budget_period_start(budget.period, now) if budget else None,
        plan.cost,
        waive_budget,
    )
    return QuotaGuard(plan=plan, sql=_ADMIT_SQL, params=params, now=now)


def quota_budget_switch(
    *, plan: QuotaPlan, refusal: QuotaExceeded, modes: Sequence[ExecutionMode], waived: bool
) -> str | None:
    """When the refusal is an exhausted budget whose policy is async_only and the process
    runs async: the note to record on the run queued instead. Else None (refused)."""
    budget = plan.cost_budget
    if (
        waived
        or budget is None
        or budget.when_exhausted != "async_only"
        or refusal.extra.get("quota") != "cost_budget"
        or ExecutionMode.ASYNC not in modes
    ):
        return None
    return (
        f"The cost budget is exhausted ({refusal.extra.get('count')} of {budget.units:g} units used this "
        f"{budget.period}): the run is queued as a job."
    )


def quota_refusal_record(*, plan: QuotaPlan, refusal: QuotaExceeded, mode: ExecutionMode) -> None:
    """Audit a refusal: who, tenant, process, which quota, its limit and the count.

    Called after the refused submission rolled back, so the event commits on its own.
    """
    audit_record(
        action="quota.refused",
        object_type="process",
        object_id=plan.process_id,
        actor=plan.principal,
        tenant_id=plan.tenant_id,
        after={
            "quota": refusal.extra.get("quota"),
            "limit": refusal.extra.get("limit"),
            "count": refusal.extra.get("count"),
            "retry_after": refusal.retry_after,
            "resource_class": plan.resource_class,
            "mode": mode.value,
            "cost_estimated": plan.cost,
            "policy_version": plan.policy_version,
        },
        detail=refusal.message,
    )
