"""The analytics processes of the catalog end to end through OGC execute: kmeans and
cluster_within on both tiers (postgis pinned by a tenant override), delaunay's postgis
tier, and refused inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from controlplane.models import ProcessRun, Tenant, TenantPolicyOverride
from controlplane.services.policy import policy_cache_clear
from tests.executors.postgis.support import blobs, reference_kmeans
from tests.ogcprocesses.support import EXC, body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]


def _points(xy: np.ndarray) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(p)}, "properties": {"n": i}}
            for i, p in enumerate(xy.tolist())
        ],
    }


@pytest.fixture
def pin_postgis(principal):
    tenant = Tenant.objects.get(slug=principal.tenant)
    for pid in ("kmeans", "cluster_within", "delaunay"):
        TenantPolicyOverride.objects.create(tenant=tenant, process_id=pid, tier_order=["postgis", "inprocess"])
    policy_cache_clear()


def _run_document(api, process: str, inputs: dict) -> tuple[dict, ProcessRun]:
    response = api.execute({"inputs": inputs, "response": "document"}, process=process)
    assert response.status_code == 200, response.content
    return body(response), ProcessRun.objects.order_by("-created_at").first()


@pytest.mark.parametrize("pinned", [False, True])
def test_kmeans_through_ogc_execute_on_each_tier(api, request, pinned):
    if pinned:
        request.getfixturevalue("pin_postgis")
    lonlat = np.array([-0.137, 51.513]) + blobs(7, 25.0) * 1e-5
    doc, run = _run_document(api, "kmeans", {"features": _points(lonlat), "k": 5})
    assert run.tier_used == ("postgis" if pinned else "inprocess")
    features = doc["result"]["value"]["features"]
    labels = [f["properties"]["cluster_id"] for f in features]
    assert [f["properties"]["n"] for f in features] == list(range(len(lonlat)))
    reference = reference_kmeans(lonlat * [np.cos(np.radians(51.513)), 1.0], 5).labels_
    assert adjusted_rand_score(reference, labels) == 1.0 and labels[0] == 0


@pytest.mark.parametrize("pinned", [False, True])
def test_cluster_within_through_ogc_execute_on_each_tier(api, request, pinned):
    if pinned:
        request.getfixturevalue("pin_postgis")
    # at 60N 0.0018 degrees of longitude is ~100 m, of latitude ~200 m
    lonlat = np.array([[10, 60], [10.0018, 60], [10, 60.0018], [10.0036, 60]])
    doc, run = _run_document(
        api, "cluster_within", {"features": _points(lonlat), "distance": {"value": 150, "unit": "meter"}}
    )
    assert run.tier_used == ("postgis" if pinned else "inprocess")
    assert [f["properties"]["cluster_id"] for f in doc["result"]["value"]["features"]] == [0, 0, 1, 0]


def test_delaunay_runs_on_the_postgis_tier_when_pinned(api, pin_postgis):
    lonlat = np.array([[10, 60], [10.01, 60], [10, 60.01], [10.01, 60.01], [10.004, 60.006]])
    doc, run = _run_document(api, "delaunay", {"features": _points(lonlat)})
    assert run.tier_used == "postgis"
    triangles = doc["result"]["value"]["features"]
    assert len(triangles) == 4 and all(t["geometry"]["type"] == "Polygon" for t in triangles)


def test_the_description_and_refused_inputs(api, pin_postgis):
    description = body(api.get("processes/kmeans"))
    k = description["inputs"]["k"]["schema"]
    assert (k["type"], k["minimum"], k["maximum"]) == ("integer", 2, 1000)
    assert {"kmeans", "cluster_within"} <= {p["id"] for p in body(api.get("processes?limit=100"))["processes"]}
    two = _points(np.array([[0.0, 0.0], [1.0, 1.0]]))
    before = ProcessRun.objects.count()
    response = api.execute({"inputs": {"features": two, "k": 1}}, process="kmeans")
    assert response.status_code == 400 and body(response)["type"] == EXC + "invalid-parameter-value"
    assert ProcessRun.objects.count() == before
    # more clusters than points: refused by the tier; the failed run answers with its 400
    response = api.execute({"inputs": {"features": two, "k": 3}}, process="kmeans")
    assert response.status_code == 400 and "must not exceed" in body(response)["detail"]
    assert body(response)["type"] == EXC + "invalid-parameter-value"
