"""Admission quotas: concurrent runs, runs per minute, a cost budget per period, input limits.

The quotas come from the tenant's policy (``Tenant.policy``, see README "Tenant policy")
and, for the capacity of each resource class across all tenants, from
``settings.HONUA["CLASS_CAPACITY"]``.

Under concurrency a quota is never exceeded: ``quota_admit`` runs inside the transaction
that records the run. One statement (``honua_quota_usage``, controlplane/sql/) takes
transaction-scoped advisory locks (the tenant's, then the class's) and counts with a fresh
snapshot, so count-and-admit and the insert of the run are atomic; the locks are released
when the run row commits. A refused submission rolls back (nothing is recorded but the
refusal's audit event, written afterwards in its own transaction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from controlplane.contracts import ExecutionMode, ResourceClass
from controlplane.exceptions import InvalidParameterValue, QuotaExceeded
from controlplane.models import ProcessRun
from controlplane.services.audit import audit_record

POLICY_KEYS = frozenset(
    {"max_concurrent_runs", "max_concurrent_by_class", "runs_per_minute", "cost_budget", "limits"}
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
# Cost units are floats (0.1 + 0.2 > 0.3): a budget is exhausted only past this tolerance.
_COST_EPSILON = 1e-9


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


@dataclass(frozen=True)
class Admission:
    """What admission decided: the execution mode (a budget may turn sync into async) and
    notes to record on the run."""

    mode: ExecutionMode
    notes: tuple[str, ...] = ()


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


_USAGE_SQL = "SELECT * FROM honua_quota_usage(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _refuse(*, quota: str, limit: float, count: float, retry_after: int, message: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"{message}; retry in {retry_after} s",
        retry_after=retry_after,
        quota=quota,
        limit=limit,
        count=count,
    )


def _rate_retry(plan: QuotaPlan, *, now: datetime, window_start: datetime, recent: int, limit: int) -> int:
    """Seconds until enough of the tenant's runs leave the 60 s window to admit one more."""
    leaving = recent - limit  # this many must leave first, then one more
    first = (
        ProcessRun.objects.filter(tenant_id=plan.tenant_id, created_at__gt=window_start)
        .order_by("created_at")
        .values_list("created_at", flat=True)[leaving : leaving + 1]
    )
    at = next(iter(first), None)
    if at is None:
        return 1
    return max(1, math.ceil((at + RATE_WINDOW - now).total_seconds()))


def quota_admit(*, plan: QuotaPlan, mode: ExecutionMode, modes: Sequence[ExecutionMode]) -> Admission:
    """Admit one submission under the quotas, or raise QuotaExceeded (HTTP 429).

    Must run inside the transaction that then records the run (the locks it takes are held
    until that transaction ends). With a cost budget, the run's estimated cost is added to
    the period's usage here (a refusal rolls it back).
    """
    if not plan.applies:
        return Admission(mode=mode)
    if not connection.in_atomic_block:
        raise RuntimeError("quota_admit must run inside the transaction that records the run")
    now = timezone.now()
    window_start = now - RATE_WINDOW if plan.runs_per_minute is not None else None
    budget = plan.cost_budget
    with connection.cursor() as cur:
        cur.execute(
            _USAGE_SQL,
            [
                plan.tenant_id,
                plan.resource_class,
                plan.tenant_scoped,
                plan.class_capacity is not None,
                plan.max_concurrent_runs is not None or plan.max_concurrent_in_class is not None,
                window_start,
                budget.period if budget else None,
                budget_period_start(budget.period, now) if budget else None,
                plan.cost if budget else None,
            ],
        )
        row = cur.fetchone()
    assert row is not None
    tenant_active, tenant_class_active, class_active, recent, budget_used = row
    who = f"tenant {plan.tenant!r}"
    if plan.max_concurrent_runs is not None and tenant_active >= plan.max_concurrent_runs:
        raise _refuse(
            quota="max_concurrent_runs", limit=plan.max_concurrent_runs, count=tenant_active,
            retry_after=CONCURRENCY_RETRY_SECONDS,
            message=f"{who} has {tenant_active} active runs; its limit is {plan.max_concurrent_runs}",
        )
    if plan.max_concurrent_in_class is not None and tenant_class_active >= plan.max_concurrent_in_class:
        raise _refuse(
            quota="max_concurrent_by_class", limit=plan.max_concurrent_in_class, count=tenant_class_active,
            retry_after=CONCURRENCY_RETRY_SECONDS,
            message=(
                f"{who} has {tenant_class_active} active {plan.resource_class} runs; "
                f"its limit is {plan.max_concurrent_in_class}"
            ),
        )
    if plan.class_capacity is not None and class_active >= plan.class_capacity:
        raise _refuse(
            quota="class_capacity", limit=plan.class_capacity, count=class_active,
            retry_after=CONCURRENCY_RETRY_SECONDS,
            message=(
                f"the {plan.resource_class} resource class is at capacity "
                f"({class_active} of {plan.class_capacity} slots in use)"
            ),
        )
    if plan.runs_per_minute is not None and window_start is not None and recent >= plan.runs_per_minute:
        raise _refuse(
            quota="runs_per_minute", limit=plan.runs_per_minute, count=recent,
            retry_after=_rate_retry(plan, now=now, window_start=window_start, recent=recent, limit=plan.runs_per_minute),
            message=f"{who} has started {recent} runs in the last minute; its limit is {plan.runs_per_minute}",
        )
    if budget is not None and budget_used + plan.cost > budget.units + _COST_EPSILON:
        state = (
            f"{who} has used {round(budget_used, 3)} of its {budget.units:g} cost units this {budget.period}"
            f" (this run: {plan.cost:g})"
        )
        if budget.when_exhausted == "async_only" and ExecutionMode.ASYNC in modes:
            return Admission(
                mode=ExecutionMode.ASYNC,
                notes=(f"The cost budget is exhausted: {state}; the run is queued as a job.",),
            )
        retry = max(1, math.ceil((budget_period_end(budget.period, now) - now).total_seconds()))
        raise _refuse(
            quota="cost_budget", limit=budget.units, count=round(budget_used, 3),
            retry_after=retry, message=f"the cost budget is exhausted: {state}",
        )
    return Admission(mode=mode)


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
