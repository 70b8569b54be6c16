"""Quota refusals on the GPServer surface: Esri's error envelope (HTTP 200) with code 429 and
the same message the OGC surface gives, Retry-After alongside, audited."""

from __future__ import annotations

import pytest
from django.test import Client

from controlplane.models import AuditEvent, ProcessRun, Tenant
from controlplane.services.policy_versions import tenant_policy_set
from tests.gpserver.support import ANALYSIS, assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]


def _policy(**policy) -> None:
    tenant = Tenant.objects.get(slug="demo")
    tenant_policy_set(tenant_id=tenant.pk, policy=policy, actor="operator")


def _post(client: Client, op: str) -> tuple[dict, dict]:
    response = client.post(f"{ANALYSIS}/echo/{op}", {"f": "json", "string_input": "x"})
    assert response.status_code == 200
    return response.json(), dict(response.headers)


def test_concurrency_refusal_is_an_esri_error_429(client, api):
    _policy(max_concurrent_runs=1)
    job, _ = _post(client, "submitJob")
    assert job["jobStatus"] == "esriJobSubmitted"
    for op in ("submitJob", "execute"):
        doc, headers = _post(client, op)
        error = assert_error(doc, 429)
        assert error["message"] == "tenant 'demo' has 1 active runs; its limit is 1; retry in 2 s"
        assert error["messageCode"] == "quota-exceeded"
        assert headers["Retry-After"] == "2"
    assert ProcessRun.objects.count() == 1
    events = AuditEvent.objects.filter(action="quota.refused").order_by("at", "id")
    assert [e.after["mode"] for e in events] == ["async", "sync"]


def test_rate_and_budget_refusals_carry_their_own_retry_after(client, api):
    _policy(runs_per_minute=1)
    assert "results" in _post(client, "execute")[0]
    doc, headers = _post(client, "execute")
    assert_error(doc, 429, "started 1 runs in the last minute")
    assert 55 <= int(headers["Retry-After"]) <= 60
    _policy(cost_budget={"units": 0, "period": "day"})
    doc, headers = _post(client, "submitJob")
    assert_error(doc, 429, "the cost budget is exhausted")
    assert int(headers["Retry-After"]) >= 1
