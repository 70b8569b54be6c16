"""Quota refusals on the OGC surface: 429 exception documents with Retry-After, audited;
an exhausted async-only budget answers a synchronous request with a job."""

from __future__ import annotations

import pytest

from controlplane.models import AuditEvent, ProcessRun, Tenant
from controlplane.services.policy_versions import tenant_policy_set
from tests.ogcprocesses.support import EXC, body, job_id_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]

ECHO = {"inputs": {"string_input": "x"}}


def _policy(**policy) -> None:
    tenant = Tenant.objects.get(slug="demo")
    tenant_policy_set(tenant_id=tenant.pk, policy=policy, actor="operator")


def test_concurrency_refusal_is_429_with_retry_after(api):
    _policy(max_concurrent_runs=1)
    assert api.execute(ECHO, prefer="respond-async").status_code == 201
    response = api.execute(ECHO, prefer="respond-async")
    assert response.status_code == 429 and response["Retry-After"] == "2"
    doc = body(response)
    assert doc["type"] == EXC + "quota-exceeded" and doc["title"] == "Too many requests"
    assert doc["detail"] == "tenant 'demo' has 1 active runs; its limit is 1; retry in 2 s"
    assert ProcessRun.objects.count() == 1
    event = AuditEvent.objects.get(action="quota.refused")
    assert event.after["quota"] == "max_concurrent_runs" and event.detail == doc["detail"]


def test_rate_refusal_says_when_the_window_frees(api):
    _policy(runs_per_minute=2)
    for _ in range(2):
        assert api.execute(ECHO).status_code == 200
    response = api.execute(ECHO)
    assert response.status_code == 429
    assert 55 <= int(response["Retry-After"]) <= 60
    assert f"retry in {response['Retry-After']} s" in body(response)["detail"]


def test_budget_refusal_waits_for_the_next_period(api):
    _policy(cost_budget={"units": 0.1, "period": "day", "when_exhausted": "refuse"})
    assert api.execute(ECHO).status_code == 200
    response = api.execute(ECHO)
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 86400
    assert "the cost budget is exhausted" in body(response)["detail"]


def test_exhausted_async_only_budget_answers_with_a_job(api):
    _policy(cost_budget={"units": 0.1, "period": "month", "when_exhausted": "async_only"})
    assert api.execute(ECHO).status_code == 200
    response = api.execute(ECHO)  # asked for nothing: sync, but the budget is spent
    assert response.status_code == 201
    run = ProcessRun.objects.get(id=job_id_of(response))
    assert run.mode == "async" and run.status == "queued"
    assert not AuditEvent.objects.filter(action="quota.refused").exists()
