"""Admission quotas: concurrency (tenant, tenant and class, class capacity), runs per minute,
cost budget, input limits; exact under concurrency, every refusal audited."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from controlplane.contracts import ExecutionMode, ExecutionRequest, Principal, RunStatus, Surface
from controlplane.exceptions import (
    InputLimitExceeded,
    InvalidParameterValue,
    PayloadTooLarge,
    QuotaExceeded,
)
from controlplane.models import (
    AuditEvent,
    ProcessDefinition,
    ProcessRun,
    Tenant,
    TenantRateCounter,
    TenantUsage,
)
from controlplane.services.execution import run_submit
from controlplane.services.policy import policy_cache_clear
from controlplane.services.policy_versions import policy_override_set, tenant_policy_set
from controlplane.services.quotas import budget_period_end, quota_plan, tenant_quotas_parse
from controlplane.services.runs import run_cancel

pytestmark = pytest.mark.usefixtures("honua_catalog")
ASYNC = ExecutionMode.ASYNC


def _request(principal: Principal, mode: ExecutionMode | None = None, process_id: str = "echo", **inputs) -> ExecutionRequest:
    inputs.setdefault("string_input", "x")
    return ExecutionRequest(process_id=process_id, inputs=inputs, principal=principal, surface=Surface.OGC, mode=mode)


def _tenant(principal: Principal) -> Tenant:
    return Tenant.objects.get(slug=principal.tenant)


def _policy(principal: Principal, **policy) -> Tenant:
    return tenant_policy_set(tenant_id=_tenant(principal).pk, policy=policy, actor="operator")


def _refusal(principal: Principal, mode: ExecutionMode | None = ASYNC, **inputs) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as caught:
        run_submit(_request(principal, mode, **inputs))
    return caught.value


def _refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="quota.refused").order_by("at", "id"))


@pytest.fixture
def other_tenant() -> Principal:
    Tenant.objects.get_or_create(slug="other", defaults={"name": "Other"})
    return Principal(tenant="other", username="someone")


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_submissions_against_a_limit_of_five_admit_exactly_five(principal):
    tenant = _policy(principal, max_concurrent_runs=5)
    n = 50
    ready = threading.Barrier(n)
    admitted: list[str] = []
    refused: list[QuotaExceeded] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        try:
            connection.ensure_connection()  # each thread its own connection, opened beforehand
            ready.wait(timeout=60)
            try:
                result = run_submit(_request(principal, ASYNC, string_input=f"run-{i}"))
                with lock:
                    admitted.append(str(result.run_id))
            except QuotaExceeded as exc:
                with lock:
                    refused.append(exc)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(admitted) == 5 and len(refused) == 45
    runs = ProcessRun.objects.filter(tenant=tenant)
    assert runs.count() == 5 and set(map(str, runs.values_list("id", flat=True))) == set(admitted)
    assert all(r.status == RunStatus.QUEUED for r in runs)
    events = _refusals()
    assert len(events) == 45
    for event, exc in zip(events, refused, strict=False):
        assert event.tenant_id == tenant.pk and event.actor == "tester" and event.object_id == "echo"
        assert event.after["quota"] == "max_concurrent_runs" and event.after["limit"] == 5
        assert event.after["count"] == 5 and event.after["policy_version"] == tenant.policy_version
        assert exc.status == 429 and exc.retry_after == 2
        assert "has 5 active runs; its limit is 5" in exc.message


@pytest.mark.django_db(transaction=True)
def test_a_finished_or_cancelled_run_frees_its_slot(principal):
    _policy(principal, max_concurrent_runs=2)
    first = run_submit(_request(principal, ASYNC))
    run_submit(_request(principal, ASYNC))
    _refusal(principal)
    run_cancel(run_id=first.run_id, tenant_id=_tenant(principal).pk, actor="tester")
    assert run_submit(_request(principal, ASYNC)).status is RunStatus.QUEUED
    _refusal(principal)
    # Sync runs count too, but only while they run: these finish before the answer.
    run_cancel(run_id=ProcessRun.objects.filter(status="queued").first().id, tenant_id=_tenant(principal).pk, actor="t")
    assert run_submit(_request(principal)).status is RunStatus.SUCCEEDED
    assert run_submit(_request(principal)).status is RunStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_sync_run_counts_while_it_runs(principal):
    _policy(principal, max_concurrent_runs=1)
    done: list[RunStatus] = []

    def slow() -> None:
        try:
            done.append(run_submit(_request(principal, ExecutionMode.SYNC, pause=1.5)).status)
        finally:
            connection.close()

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 10
    while not ProcessRun.objects.filter(status="running").exists():
        assert time.monotonic() < deadline, "the sync run did not start"
        time.sleep(0.02)
    refusal = _refusal(principal, ExecutionMode.SYNC)
    assert refusal.extra["quota"] == "max_concurrent_runs" and refusal.extra["count"] == 1
    thread.join(30)
    assert done == [RunStatus.SUCCEEDED]
    assert run_submit(_request(principal)).status is RunStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_class_capacity_is_shared_by_all_tenants(principal, other_tenant, settings):
    settings.HONUA = {**settings.HONUA, "CLASS_CAPACITY": {"cpu_burst": 3, "db_heavy": 1}}
    for _ in range(2):
        run_submit(_request(principal, ASYNC))
    run_submit(_request(other_tenant, ASYNC))
    refusal = _refusal(other_tenant)
    assert refusal.extra == {"quota": "class_capacity", "limit": 3, "count": 3}
    assert "cpu_burst resource class is at capacity (3 of 3 slots in use)" in refusal.message
    assert refusal.retry_after == 2
    # Another class has slots of its own (the tenant's override moves echo to db_heavy).
    policy_override_set(tenant_id=_tenant(principal).pk, process_id="echo", resource_class="db_heavy", actor="op")
    run = ProcessRun.objects.get(id=run_submit(_request(principal, ASYNC)).run_id)
    assert run.resource_class == "db_heavy"
    assert _refusal(principal).extra["quota"] == "class_capacity"
    event = _refusals()[-1]
    assert event.tenant.slug == principal.tenant and event.after["resource_class"] == "db_heavy"
    assert [e.tenant.slug for e in _refusals()] == ["other", principal.tenant]


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_per_tenant_and_class(principal, other_tenant):
    _policy(principal, max_concurrent_by_class={"cpu_burst": 1})
    run_submit(_request(principal, ASYNC))
    refusal = _refusal(principal)
    assert refusal.extra == {"quota": "max_concurrent_by_class", "limit": 1, "count": 1}
    assert "has 1 active cpu_burst runs; its limit is 1" in refusal.message
    run_submit(_request(other_tenant, ASYNC))  # another tenant's own count
    policy_override_set(tenant_id=_tenant(principal).pk, process_id="echo", resource_class="long_tail", actor="op")
    assert run_submit(_request(principal, ASYNC)).status is RunStatus.QUEUED  # another class


# --- rate -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_runs_per_minute_refuses_until_the_window_frees(principal):
    tenant = _policy(principal, runs_per_minute=3)
    ids = [run_submit(_request(principal)).run_id for _ in range(3)]  # sync runs: finished, still counted
    assert ProcessRun.objects.filter(id__in=ids, status="succeeded").count() == 3
    assert sum(TenantRateCounter.objects.filter(tenant=tenant).values_list("runs", flat=True)) == 3
    refusal = _refusal(principal)
    assert refusal.extra == {"quota": "runs_per_minute", "limit": 3, "count": 3}
    assert 58 <= refusal.retry_after <= 60
    # As if those runs had started 50 s ago: the window frees in about 10 s.
    counters = TenantRateCounter.objects.filter(tenant=tenant)
    counters.update(second=timezone.now().replace(microsecond=0) - timedelta(seconds=50))
    assert 9 <= _refusal(principal).retry_after <= 11
    counters.update(second=timezone.now().replace(microsecond=0) - timedelta(seconds=61))
    assert run_submit(_request(principal, ASYNC)).status is RunStatus.QUEUED
    # The new second's counter removed those out of the window.
    assert list(TenantRateCounter.objects.filter(tenant=tenant).values_list("runs", flat=True)) == [1]
    assert [e.after["quota"] for e in _refusals()] == ["runs_per_minute"] * 2
    assert all(e.tenant_id == tenant.pk for e in _refusals())


@pytest.mark.django_db(transaction=True)
def test_the_rate_window_spans_the_last_sixty_seconds(principal):
    """Counters of the window count, older ones do not, and the retry waits for the oldest
    counter whose runs must leave."""
    tenant = _policy(principal, runs_per_minute=10)
    now = timezone.now().replace(microsecond=0)
    TenantRateCounter.objects.bulk_create([
        TenantRateCounter(tenant=tenant, second=now - timedelta(seconds=70), runs=50),  # out of the window
        TenantRateCounter(tenant=tenant, second=now - timedelta(seconds=40), runs=4),
        TenantRateCounter(tenant=tenant, second=now - timedelta(seconds=20), runs=5),
    ])
    run_submit(_request(principal, ASYNC))  # 4 + 5 + 1 = 10
    refusal = _refusal(principal)
    assert refusal.extra["count"] == 10
    assert 19 <= refusal.retry_after <= 21  # the 4 runs of 40 s ago leave in 20 s


# --- cost budget ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_exhausted_budget_refuses_until_the_period_ends(principal):
    # echo's estimate is 0.1 units a run: two fit in 0.25, the third does not.
    tenant = _policy(principal, cost_budget={"units": 0.25, "period": "day", "when_exhausted": "refuse"})
    run_submit(_request(principal))
    run_submit(_request(principal, ASYNC))
    refusal = _refusal(principal, ExecutionMode.SYNC)
    assert refusal.extra["quota"] == "cost_budget" and refusal.extra["limit"] == 0.25
    assert "the cost budget is exhausted" in refusal.message and "0.2 of its 0.25 cost units this day" in refusal.message
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    assert abs(refusal.retry_after - (midnight - now).total_seconds()) <= 3
    _refusal(principal, ASYNC)  # "refuse" refuses jobs too
    usage = TenantUsage.objects.get(tenant=tenant)
    assert usage.period == "day" and usage.period_start == now.date()
    assert usage.runs == 2 and math.isclose(usage.cost_units, 0.2)  # refusals rolled back
    assert ProcessRun.objects.filter(tenant=tenant).count() == 2


@pytest.mark.django_db(transaction=True)
def test_exhausted_budget_with_async_only_turns_sync_requests_into_jobs(principal, settings):
    tenant = _policy(principal, cost_budget={"units": 0.15, "period": "month", "when_exhausted": "async_only"})
    assert run_submit(_request(principal)).mode is ExecutionMode.SYNC
    result = run_submit(_request(principal, ExecutionMode.SYNC))
    assert result.mode is ExecutionMode.ASYNC and result.status is RunStatus.QUEUED
    run = ProcessRun.objects.get(id=result.run_id)
    assert run.mode == "async" and run.lease_owner == ""
    assert run.messages[1]["type"] == "warning" and "cost budget is exhausted" in run.messages[1]["text"]
    job = ProcessRun.objects.get(id=run_submit(_request(principal, ASYNC)).run_id)  # asked async: queued
    assert job.mode == "async" and "cost budget is exhausted" in job.messages[1]["text"]
    usage = TenantUsage.objects.get(tenant=tenant, period="month")
    assert usage.period_start == datetime.now(UTC).date().replace(day=1) and usage.runs == 3
    assert math.isclose(usage.cost_units, 0.3)  # queued runs spend the budget too
    assert not _refusals()
    # A process that runs only inline cannot become a job: refused.
    defn = ProcessDefinition.objects.get(process_id="echo", is_current=True)
    defn.spec = {**defn.spec, "modes": ["sync"]}
    defn.save()
    policy_cache_clear()
    refusal = _refusal(principal, None)
    assert refusal.extra["quota"] == "cost_budget" and refusal.retry_after >= 1
    assert _refusals()[-1].after["mode"] == "sync"


def test_budget_periods_end_at_utc_midnight_and_month_ends():
    assert budget_period_end("day", datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == datetime(2026, 4, 1, tzinfo=UTC)
    assert budget_period_end("month", datetime(2026, 12, 15, 8, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert budget_period_end("month", datetime(2026, 2, 1, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


# --- input limits and the per-run cost cap ----------------------------------------------------


@pytest.mark.django_db
def test_tenant_input_limits_tighten_the_definitions(principal):
    _policy(principal, limits={"echo": {"max_bytes": 500}})
    with pytest.raises(PayloadTooLarge, match="accepts at most 500"):
        run_submit(ExecutionRequest(
            process_id="echo", inputs={"string_input": "x"}, principal=principal, surface=Surface.OGC,
            request_bytes=800,
        ))
    _policy(principal, limits={"*": {"max_features": 2}, "echo": {"max_bytes": 10**12}})
    points = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i, 0]}, "properties": {}} for i in range(3)],
    }
    with pytest.raises(InputLimitExceeded, match="3 features exceed the limit of 2"):
        run_submit(ExecutionRequest(
            process_id="convex_hull", inputs={"features": points}, principal=principal, surface=Surface.OGC
        ))
    # Looser than the definition: the definition's limit stays (echo: 10 MiB).
    with pytest.raises(PayloadTooLarge, match="accepts at most 10485760"):
        run_submit(ExecutionRequest(
            process_id="echo", inputs={"string_input": "x"}, principal=principal, surface=Surface.OGC,
            request_bytes=20 * 1024 * 1024,
        ))
    assert not ProcessRun.objects.exists() and not _refusals()


@pytest.mark.django_db
def test_the_override_cost_cap_refuses_expensive_runs(principal):
    policy_override_set(tenant_id=_tenant(principal).pk, process_id="echo", cost_cap=0.05, actor="op")
    with pytest.raises(InputLimitExceeded, match="estimated cost of this run, 0.1 units, exceeds the cap of 0.05"):
        run_submit(_request(principal))
    policy_override_set(tenant_id=_tenant(principal).pk, process_id="echo", cost_cap=0.1, actor="op")
    assert run_submit(_request(principal, ASYNC)).status is RunStatus.QUEUED


# --- policy checks and the cheap path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"max_concurent_runs": 5}, "unknown key 'max_concurent_runs'"),
        ({"max_concurrent_runs": -1}, "max_concurrent_runs must be a whole number >= 0"),
        ({"max_concurrent_runs": True}, "max_concurrent_runs must be a whole number"),
        ({"runs_per_minute": 2.5}, "runs_per_minute must be a whole number"),
        ({"max_concurrent_by_class": {"gpu": 1}}, "'gpu' is not a resource class"),
        ({"cost_budget": {"units": 10}}, "cost_budget.period must be 'day' or 'month'"),
        ({"cost_budget": {"units": 10, "period": "week"}}, "cost_budget.period"),
        ({"cost_budget": {"units": "ten", "period": "day"}}, "cost_budget.units must be a number"),
        ({"cost_budget": {"units": 1, "period": "day", "when_exhausted": "queue"}}, "when_exhausted"),
        ({"limits": {"echo": {"max_runtime_seconds": 5}}}, "unknown limit 'max_runtime_seconds'"),
        ({"limits": {"echo": {"max_bytes": 0}}}, "max_bytes must be a whole number >= 1"),
        ([1, 2], "the policy must be an object"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(policy, problem):
    with pytest.raises(InvalidParameterValue, match=problem.replace("(", r"\(").replace(")", r"\)")):
        tenant_quotas_parse(policy)


def test_quotas_apply_only_when_configured(settings):
    settings.HONUA = {**settings.HONUA, "CLASS_CAPACITY": {"db_heavy": 8}}
    args = dict(tenant_id=1, tenant="t", principal="p", process_id="echo", cost=1.0, policy_version=1)
    assert not quota_plan(resource_class="cpu_burst", quotas=tenant_quotas_parse({}), **args).applies
    assert quota_plan(resource_class="db_heavy", quotas=tenant_quotas_parse({}), **args).applies
    plan = quota_plan(resource_class="cpu_burst", quotas=tenant_quotas_parse({"runs_per_minute": 9}), **args)
    assert plan.applies and plan.tenant_scoped and plan.class_capacity is None


# --- the admission function, through a cursor -------------------------------------------------


def _admit(cur, tenant_id: int, **kw) -> tuple:
    """honua_quota_admit for cpu_burst; keyword arguments name its parameters (p_ left off)."""
    args = {
        "max_tenant": None, "max_tenant_class": None, "class_capacity": None, "rate_limit": None,
        "now": timezone.now(), "budget_units": None, "budget_period": None, "budget_start": None,
        "cost": 0.0, "budget_waived": False, **kw,
    }
    cur.execute(
        "SELECT * FROM honua_quota_admit(%s, 'cpu_burst', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [tenant_id, *args.values()],
    )
    return cur.fetchone()


@pytest.mark.django_db(transaction=True)
def test_honua_quota_admit_decides_and_holds_its_locks_until_commit(principal, other_tenant):
    from django.db import transaction

    tenant = _tenant(principal)
    run_submit(_request(principal, ASYNC))
    run_submit(_request(principal))  # finished: not active, but recent
    run_submit(_request(other_tenant, ASYNC))
    today = datetime.now(UTC).date()
    budget = {"budget_units": 1.0, "budget_period": "day", "budget_start": today}
    held: list[bool] = []

    def try_lock() -> None:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_xact_lock((1751::bigint << 32) | %s)", [tenant.pk])
                held.append(not cur.fetchone()[0])
        finally:
            connection.close()

    with transaction.atomic(), connection.cursor() as cur:
        admitted = _admit(cur, tenant.pk, max_tenant=2, max_tenant_class=2, class_capacity=3, rate_limit=5,
                          cost=0.5, **budget)
        assert admitted == (None, 1, 1, 2, 0, 0.0)  # verdict, tenant, tenant in class, class, recent, budget
        assert _admit(cur, tenant.pk, rate_limit=5, cost=0.25, **budget)[4] == 1  # used 0.5 + 0.25
        assert _admit(cur, tenant.pk, cost=0.5, **budget)[::5] == ("cost_budget", 0.75)
        assert _admit(cur, tenant.pk, cost=0.5, budget_waived=True, **budget)[0] is None
        thread = threading.Thread(target=try_lock)
        thread.start()
        thread.join(10)
    thread = threading.Thread(target=try_lock)
    thread.start()
    thread.join(10)
    assert held == [True, False]  # taken by the open transaction, free after its commit
    usage = TenantUsage.objects.get(tenant=tenant, period="day", period_start=today)
    assert usage.cost_units == 1.25 and usage.runs == 3  # the refused call added nothing
    assert sum(TenantRateCounter.objects.filter(tenant=tenant).values_list("runs", flat=True)) == 2
    with connection.cursor() as cur:
        assert _admit(cur, tenant.pk, max_tenant=1)[:2] == ("max_concurrent_runs", 1)
        assert _admit(cur, tenant.pk, max_tenant_class=1)[0] == "max_concurrent_by_class"
        assert _admit(cur, tenant.pk, class_capacity=2)[::3] == ("class_capacity", 2)
        assert _admit(cur, tenant.pk, rate_limit=2)[::4] == ("runs_per_minute", 2)
        assert _admit(cur, tenant.pk, rate_limit=0)[0] == "runs_per_minute"
        later = timezone.now() + timedelta(seconds=61)  # those two runs left the window
        assert _admit(cur, tenant.pk, rate_limit=2, now=later)[::4] == (None, 0)
        assert _admit(cur, tenant.pk) == (None,) * 6  # nothing asked, nothing counted
