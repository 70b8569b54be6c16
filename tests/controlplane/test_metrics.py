"""Prometheus metrics: runs through the real OGC and GPServer APIs move the counters and the
histogram by the right labels; the ledger gauges follow queued and running runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from controlplane.models import ProcessDefinition, ProcessRun
from controlplane.selectors import _ACTIVE_SUMMARY_SQL
from controlplane.services.policy import policy_cache_clear
from controlplane.services.runs import run_cancel, run_claim, runs_reap_expired
from tests.gpserver.conftest import gp  # noqa: F401  (fixture)
from tests.gpserver.support import ANALYSIS, GEOMETRY, GPClient, point_featureset
from tests.ogcprocesses.conftest import echo_tier, ogc  # noqa: F401  (fixtures)
from tests.ogcprocesses.support import OgcClient, job_id_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc", "gp")]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def delta(client: Client) -> Callable[..., float]:
    """How much a sample moved since the test started (counters are per process, not per test)."""
    before = scrape(client)
    after: dict[str, Samples] = {}

    def moved(name: str, **labels: str) -> float:
        if "now" not in after:
            after["now"] = scrape(client)
        return value(after["now"], name, **labels) - value(before, name, **labels)

    moved.rescrape = lambda: after.pop("now", None)  # type: ignore[attr-defined]
    return moved


def test_runs_through_both_apis_are_counted_by_process_tier_and_outcome(client, delta):
    ogc_api, gp_api = OgcClient(client), GPClient(client)
    assert ogc_api.execute({"inputs": {"string_input": "a"}}).status_code == 200
    assert ogc_api.execute({"inputs": {"string_input": "b"}}).status_code == 200
    doc = gp_api.post(f"{ANALYSIS}/echo/execute", string_input="c")
    assert doc["results"][0]["value"] == "c"

    echo = {"process": "echo", "tier": "inprocess"}
    assert delta("honua_executions_total", **echo, outcome="succeeded") == 3
    assert delta("honua_executions_total", **echo, outcome="failed") == 0
    assert delta("honua_run_duration_seconds_count", **echo) == 3
    assert delta("honua_run_duration_seconds_sum", **echo) > 0
    assert delta("honua_run_duration_seconds_bucket", **echo, le="+Inf") == 3
    assert delta("honua_run_failures_total", **echo, code="timed-out") == 0


def test_failures_are_counted_by_tier_process_and_error_code(client, delta):
    ProcessRun.objects.all().delete()
    spec = {
        "id": "slow", "version": "1.0.0", "title": "Slow", "modes": ["sync", "async"],
        "tiers": ["inprocess"], "handlers": {"inprocess": "echo"},
        "inputs": [{"name": "pause", "type": "number"}], "outputs": [{"name": "x", "type": "string"}],
    }
    ProcessDefinition.objects.create(
        process_id="slow", version="1.0.0", revision=1, is_current=True, spec=spec, spec_sha256="0" * 64,
        title="Slow", tier_order=["inprocess"], resource_class="cpu_burst", default_mode="sync",
        limits={"max_runtime_seconds": 0.1},
    )
    policy_cache_clear()
    assert OgcClient(client).execute({"inputs": {"pause": 1}}, process="slow").status_code == 500

    failed = GPClient(client).post(
        f"{GEOMETRY}/project/execute", features=point_featureset((1, 1)), target_srid='{"wkid": 999999}'
    )
    assert "error" in failed
    run = ProcessRun.objects.get(process_id="project")
    assert run.status == "failed"

    assert delta("honua_executions_total", process="slow", tier="inprocess", outcome="timed_out") == 1
    assert delta("honua_run_failures_total", process="slow", tier="inprocess", code="timed-out") == 1
    tier = run.tier_used or "none"
    assert delta("honua_executions_total", process="project", tier=tier, outcome="failed") == 1
    assert delta("honua_run_failures_total", process="project", tier=tier, code=run.error["code"]) == 1
    assert delta("honua_run_duration_seconds_count", process="slow", tier="inprocess") == 1


def test_queue_depth_runs_by_status_and_free_capacity_follow_the_ledger(client, delta, principal):
    ProcessRun.objects.all().delete()
    api = OgcClient(client)
    jobs = [
        job_id_of(api.execute({"inputs": {"string_input": str(i)}}, prefer="respond-async")) for i in range(3)
    ]
    capacity = settings.HONUA["CLASS_CAPACITY"]["cpu_burst"]
    now = scrape(client)
    assert value(now, "honua_queue_depth", resource_class="cpu_burst") == 3
    assert value(now, "honua_runs", status="queued", resource_class="cpu_burst") == 3
    assert value(now, "honua_runs", status="running", resource_class="cpu_burst") == 0
    assert value(now, "honua_queue_oldest_age_seconds", resource_class="cpu_burst") >= 0
    assert value(now, "honua_class_capacity_slots", resource_class="cpu_burst") == capacity
    assert value(now, "honua_class_free_slots", resource_class="cpu_burst") == capacity
    assert value(now, "honua_queue_depth", resource_class="db_heavy") == 0
    assert value(now, "honua_ledger_scrape_success") == 1

    assert run_claim(run_id=jobs[0], owner="metrics-test:1") is not None
    assert client.delete(f"/ogcapi/jobs/{jobs[1]}").status_code == 200  # queued -> cancelled now
    now = scrape(client)
    assert value(now, "honua_queue_depth", resource_class="cpu_burst") == 1
    assert value(now, "honua_runs", status="running", resource_class="cpu_burst") == 1
    assert value(now, "honua_class_free_slots", resource_class="cpu_burst") == capacity - 1
    assert delta("honua_executions_total", process="echo", tier="none", outcome="cancelled") == 1

    tenant_id = ProcessRun.objects.get(id=jobs[0]).tenant_id
    run_cancel(run_id=jobs[0], tenant_id=tenant_id, actor="tester")  # running -> cancelling
    now = scrape(client)
    assert value(now, "honua_runs", status="cancelling", resource_class="cpu_burst") == 1
    # A cancelling run still holds its slot until its worker stops.
    assert value(now, "honua_class_free_slots", resource_class="cpu_burst") == capacity - 1


def test_capacity_comes_from_the_setting(client, settings):
    settings.HONUA = {**settings.HONUA, "CLASS_CAPACITY": {"cpu_burst": 2, "gpu": 1}}
    now = scrape(client)
    assert value(now, "honua_class_capacity_slots", resource_class="cpu_burst") == 2
    assert value(now, "honua_class_capacity_slots", resource_class="gpu") == 1
    assert ("honua_class_capacity_slots", frozenset({("resource_class", "db_heavy")})) not in now


def test_the_ledger_query_reads_only_active_runs_through_their_partial_index(client):
    """With a ledger of many finished runs, the scrape's aggregate does not scan them."""
    assert OgcClient(client).execute({"inputs": {"string_input": "seed"}}).status_code == 200
    seed = ProcessRun.objects.get()
    columns = [f.column for f in ProcessRun._meta.concrete_fields if f.column != "id"]
    listed = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO controlplane_processrun (id, {listed}) "
            f"SELECT gen_random_uuid(), {listed} FROM controlplane_processrun, generate_series(1, 20000) "
            "WHERE id = %s",
            [str(seed.id)],
        )
        cur.execute("ANALYZE controlplane_processrun")
        cur.execute("EXPLAIN (FORMAT JSON) " + _ACTIVE_SUMMARY_SQL)
        plan = json.dumps(cur.fetchone()[0])
    assert "run_active_class_idx" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_a_run_whose_worker_vanished_is_counted_when_reaped(client, delta):
    ProcessRun.objects.all().delete()
    job = job_id_of(OgcClient(client).execute({"inputs": {"string_input": "lost"}}, prefer="respond-async"))
    assert run_claim(run_id=job, owner="vanished:1") is not None
    ProcessRun.objects.filter(id=job).update(
        attempt_count=F("max_attempts"), lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert runs_reap_expired()["failed"] == 1
    assert delta("honua_executions_total", process="echo", tier="none", outcome="failed") == 1
    assert delta("honua_run_failures_total", process="echo", tier="none", code="worker-lost") == 1
    assert delta("honua_run_duration_seconds_count", process="echo", tier="none") == 1


def test_a_crashing_executor_fails_the_run_and_is_counted(client, delta, monkeypatch):
    from controlplane.services import execution
    from executors.base import Executor

    class Crashing(Executor):
        tier = "inprocess"

        def supports(self, handler: str) -> bool:
            return True

        def execute(self, handler, inputs, ctx):
            raise RuntimeError("boom")

    original = execution.get_executor
    monkeypatch.setattr(execution, "get_executor", lambda t: Crashing() if t == "inprocess" else original(t))
    ProcessRun.objects.all().delete()
    assert OgcClient(client).execute({"inputs": {"string_input": "x"}}).status_code == 500
    run = ProcessRun.objects.get()
    assert run.status == "failed" and run.error["code"] == "execution-failed"
    assert delta("honua_run_failures_total", process="echo", tier="inprocess", code="execution-failed") == 1
