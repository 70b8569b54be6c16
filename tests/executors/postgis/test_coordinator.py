"""The postgis tier under the control plane's coordinator: data locality, pinning, fallback."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from controlplane.contracts import ExecutionRequest, RunStatus, Surface
from controlplane.models import ProcessRun
from controlplane.services.execution import run_submit
from tests.executors.postgis.support import fc

pytestmark = [pytest.mark.usefixtures("honua_catalog"), pytest.mark.django_db(transaction=True)]


def _submit(principal, process_id: str, **inputs) -> ProcessRun:
    result = run_submit(
        ExecutionRequest(
            process_id=process_id, inputs=inputs, principal=principal, surface=Surface.OGC
        )
    )
    assert result.status is RunStatus.SUCCEEDED, result.error
    return ProcessRun.objects.get(id=result.run_id)


@pytest.fixture
def pin_postgis(principal):
    """A tenant override pinning postgis first (inline data then goes to the database)."""
    from controlplane.models import Tenant, TenantPolicyOverride
    from controlplane.services.policy import policy_cache_clear

    tenant = Tenant.objects.get(slug=principal.tenant)
    for pid in ("dbscan", "buffer"):
        TenantPolicyOverride.objects.create(tenant=tenant, process_id=pid, tier_order=["postgis", "inprocess"])
    policy_cache_clear()


def test_inline_data_skips_the_postgis_tier_by_locality(principal):
    run = _submit(
        principal,
        "dbscan",
        features=fc([shapely.Point(x, 0) for x in (0, 1, 2, 50)], srid=3857),
        eps={"value": 1.5, "unit": "meter"},
        min_points=2,
    )
    assert run.tier_used == "inprocess"
    assert run.tiers_tried[0]["tier"] == "postgis" and run.tiers_tried[0]["outcome"] == "skipped"
    assert "data locality" in run.tiers_tried[0]["reason"]
    assert [f["properties"]["cluster_id"] for f in run.outputs["result"]["features"]] == [0, 0, 0, -1]


def test_dbscan_runs_on_the_postgis_tier(principal, pin_postgis):
    pts = [shapely.Point(x, 0) for x in (0, 1, 2, 50)]
    run = _submit(
        principal,
        "dbscan",
        features=fc(pts, srid=3857),
        eps={"value": 1.5, "unit": "meter"},
        min_points=2,
    )
    assert run.tier_used == "postgis"
    assert [f["properties"]["cluster_id"] for f in run.outputs["result"]["features"]] == [
        0,
        0,
        0,
        -1,
    ]


def test_a_statement_timeout_falls_back_to_the_next_tier_with_the_reason(principal, settings, pin_postgis):
    settings.HONUA = {**settings.HONUA, "POSTGIS_STATEMENT_TIMEOUT_MS": 1}
    pts = shapely.points(np.random.default_rng(2).uniform(0, 20_000, (4000, 2)))
    run = _submit(
        principal,
        "buffer",
        features=fc(list(pts), srid=3857),
        distance={"value": 400, "unit": "meter"},
        quad_segs=64,
        dissolve=True,
    )
    assert run.tier_used == "inprocess"
    first = run.tiers_tried[0]
    assert first["tier"] == "postgis" and first["outcome"] == "fallback"
    assert "statement timeout" in first["reason"]
