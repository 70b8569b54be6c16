"""hexbin and idw end to end through OGC API - Processes: the catalog wiring, the postgis tier
serving them, and a client's mistake answered as an OGC exception (400)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from controlplane.models import ProcessRun
from tests.ogcprocesses.support import body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]


def _points(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    lonlat = np.column_stack([rng.uniform(-76.7, -76.5, n), rng.uniform(39.2, 39.35, n)])
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
             "properties": {"price": float(k % 50)}}
            for k, (x, y) in enumerate(lonlat)
        ],
    }


@pytest.fixture
def inline_to_postgis(settings):
    """Ship inline inputs to the postgis tier (HONUA_POSTGIS_INLINE=always)."""
    settings.HONUA = {**settings.HONUA, "POSTGIS_INLINE": "always"}


def _hexbin(api, features):
    doc = body(api.execute({
        "inputs": {"features": features, "cell_size": {"value": 2, "unit": "kilometer"}, "sum_field": "price"},
        "response": "document",
    }, process="hexbin"))
    return doc["result"]["value"]


def test_hexbin_runs_in_process_by_default(api):
    features = _points(200, 1)
    result = _hexbin(api, features)
    assert sum(f["properties"]["count"] for f in result["features"]) == 200
    run = ProcessRun.objects.get(process_id="hexbin")
    assert run.tier_used == "inprocess" and run.tiers_tried[0]["tier"] == "postgis"


def test_hexbin_executes_on_the_postgis_tier(api, inline_to_postgis):
    features = _points(200, 1)
    result = _hexbin(api, features)
    props = [f["properties"] for f in result["features"]]
    assert sum(p["count"] for p in props) == 200
    assert sum(p["sum"] for p in props) == pytest.approx(sum(k % 50 for k in range(200)))
    hexes = [shapely.geometry.shape(f["geometry"]) for f in result["features"]]
    for f, p in zip(features["features"], [shapely.Point(f["geometry"]["coordinates"]) for f in features["features"]], strict=True):
        assert sum(h.covers(p) for h in hexes) == 1, f
    run = ProcessRun.objects.get(process_id="hexbin")
    assert run.tier_used == "postgis" and run.status == "succeeded"


def test_idw_executes_and_a_too_fine_grid_is_a_400(api, inline_to_postgis):
    features = _points(50, 2)
    doc = body(api.execute({
        "inputs": {"features": features, "value_field": "price", "cell_size": {"value": 1, "unit": "kilometer"},
                   "max_neighbors": 8},
        "response": "document",
    }, process="idw"))
    cells = doc["result"]["value"]["features"]
    assert len(cells) > 100 and all(c["properties"]["value"] is not None for c in cells)
    values = [c["properties"]["value"] for c in cells]
    assert 0 <= min(values) and max(values) <= 49
    assert ProcessRun.objects.get(process_id="idw").tier_used == "postgis"
    response = api.execute({
        "inputs": {"features": features, "value_field": "price", "cell_size": {"value": 1, "unit": "meter"}},
    }, process="idw")
    assert response.status_code == 400
    problem = body(response)
    assert "more than the limit of 250000" in problem["detail"]
