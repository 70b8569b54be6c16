"""The batch tier of the catalog's idw and dbscan gives the in-process tier's answers on the same
inputs (real data: Baltimore house sales, John Snow's cholera deaths; projected and lon/lat)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.executor import InProcessExecutor
from tests.executors.realdata.datasets import (
    PLANAR_LABEL_SRID,
    Layer,
    collection,
    read_layer,
    result_geometries,
    result_values,
)

# Baltimore's sales are in planar grid units (see PLANAR_LABEL_SRID); scaled by 100 and moved
# to Baltimore's place in Web Mercator they become lon/lat points over a ~13 km x 8 km town.
BALTIMORE_3857 = (-8_620_000.0, 4_710_000.0)


@pytest.fixture(scope="module")
def baltim() -> Layer:
    return read_layer("baltim/baltim.shp", assumed_srid=PLANAR_LABEL_SRID)


@pytest.fixture(scope="module")
def deaths() -> Layer:
    return read_layer("snow_maps/SohoPeople.shp")


def _lonlat(geoms: np.ndarray, srid: int, *, scale: float = 1.0, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    tr = Transformer.from_crs(srid, 4326, always_xy=True)
    xy = shapely.get_coordinates(geoms) * scale + np.asarray(origin)
    lon, lat = tr.transform(xy[:, 0], xy[:, 1])
    return shapely.points(np.column_stack([lon, lat]))


def _with_props(fc: dict[str, Any], props: list[dict[str, Any]]) -> dict[str, Any]:
    for feature, p in zip(fc["features"], props, strict=True):
        feature["properties"] = dict(p)
    return fc


def _both(batch: Any, recorder: Any, handler: str, inputs: dict[str, Any], **ctx: Any) -> tuple[dict, dict]:
    here = InProcessExecutor().execute(handler, inputs, ExecutionContext(run_id="t", process_id=handler,
                                                                         handler=handler, **ctx))["result"]
    there = batch.execute(handler, inputs, recorder.ctx(handler, **ctx))["result"]
    return here, there


def _assert_same_grid(here: dict, there: dict) -> None:
    assert there["srid"] == here["srid"]
    assert len(there["features"]) == len(here["features"])
    for key in ("grid_column", "grid_row"):
        assert [f["properties"][key] for f in there["features"]] == [f["properties"][key] for f in here["features"]]
    a, b = result_values(here, "value"), result_values(there, "value")
    assert np.array_equal(np.isnan(a), np.isnan(b))  # the same null cells
    np.testing.assert_allclose(b[~np.isnan(b)], a[~np.isnan(a)], rtol=1e-9, atol=0)
    np.testing.assert_allclose(
        shapely.get_coordinates(result_geometries(there)), shapely.get_coordinates(result_geometries(here)),
        rtol=1e-12, atol=1e-9,
    )
    assert there["fields"] == here["fields"]


@pytest.mark.parametrize(
    ("k", "radius", "power"), [(12, None, 2), (5, 9.0, 1.5), (30, 4.0, 3)]
)
def test_idw_projected_baltimore_matches_the_inprocess_tier(batch, recorder, baltim, k, radius, power):
    inputs: dict[str, Any] = {"features": baltim.collection, "value_field": "PRICE",
                              "cell_size": {"value": 3, "unit": "meter"}, "power": power, "max_neighbors": k}
    if radius is not None:
        inputs["search_radius"] = {"value": radius, "unit": "meter"}
    here, there = _both(batch, recorder, "idw", inputs)
    _assert_same_grid(here, there)
    values = result_values(there, "value")
    assert len(values) > 1000
    if radius == 4.0:
        assert np.isnan(values).sum() > 100  # the small radius leaves cells without samples
    # An independent check of one cell: numpy over the full distance matrix.
    xy = shapely.get_coordinates(baltim.geometries)
    prices = np.array([p["PRICE"] for p in baltim.properties], dtype=float)
    cell = result_geometries(there)[len(values) // 2]
    centre = shapely.get_coordinates(shapely.centroid(cell))[0]
    d = np.hypot(*(xy - centre).T)
    near = np.argsort(d, kind="stable")[:k]
    if radius is not None:
        near = near[d[near] <= radius]
    if len(near):
        w = 1 / d[near] ** power
        assert values[len(values) // 2] == pytest.approx(float((w * prices[near]).sum() / w.sum()), rel=1e-9)


def test_idw_lonlat_with_extent_and_output_crs_matches_the_inprocess_tier(batch, recorder, baltim):
    points = _lonlat(baltim.geometries, 3857, scale=100.0, origin=BALTIMORE_3857)
    fc = _with_props(collection(points, 4326), baltim.properties)
    lo, hi = shapely.get_coordinates(points).min(axis=0), shapely.get_coordinates(points).max(axis=0)
    inputs = {"features": fc, "value_field": "PRICE", "cell_size": {"value": 0.25, "unit": "kilometer"},
              "search_radius": {"value": 1, "unit": "mile"}, "max_neighbors": 8,
              "extent": {"bbox": [lo[0] - 0.01, lo[1] - 0.01, hi[0] + 0.005, hi[1]], "srid": 4326}}
    here, there = _both(batch, recorder, "idw", inputs)
    _assert_same_grid(here, there)
    assert there["srid"] == 4326
    cells = result_geometries(there)
    # Cells are 250 m on the ground, not degrees: a geodesic side of the first cell.
    from pyproj import Geod

    ring = shapely.get_coordinates(cells[0])
    _, _, side = Geod(ellps="WGS84").inv(ring[0, 0], ring[0, 1], ring[1, 0], ring[1, 1])
    assert side == pytest.approx(250.0, rel=1e-3)
    assert np.isnan(result_values(there, "value")).any()

    here, there = _both(batch, recorder, "idw", inputs, out_srid=3857)
    _assert_same_grid(here, there)
    assert there["srid"] == 3857


def test_idw_max_cells_is_refused_alike(batch, recorder, baltim):
    inputs = {"features": baltim.collection, "value_field": "PRICE", "cell_size": {"value": 1, "unit": "meter"}}
    limits = {"max_cells": 5000}  # 128 x 76 cells
    with pytest.raises(InvalidInput) as inproc:
        InProcessExecutor().execute("idw", inputs, ExecutionContext(run_id="t", process_id="idw", handler="idw",
                                                                    limits=limits))
    with pytest.raises(InvalidInput) as inbatch:
        batch.execute("idw", inputs, recorder.ctx("idw", limits=limits))
    assert "more than the limit of 5000" in str(inproc.value)
    assert str(inproc.value) in str(inbatch.value)
    for bad in ({**inputs, "cell_size": {"value": 1, "unit": "degree"}}, {**inputs, "value_field": "NOPE"}):
        with pytest.raises(InvalidInput):
            batch.execute("idw", bad, recorder.ctx("idw"))


@pytest.mark.parametrize(
    ("frame", "eps", "min_points", "method"),
    [
        ("web_mercator", {"value": 15, "unit": "meter"}, 5, "auto"),
        ("web_mercator", {"value": 25, "unit": "meter"}, 4, "planar"),
        ("web_mercator", {"value": 60, "unit": "foot"}, 3, "geodesic"),
        ("lonlat", {"value": 20, "unit": "meter"}, 5, "auto"),
        ("lonlat", {"value": 0.0002, "unit": "degree"}, 4, "auto"),
    ],
)
def test_dbscan_cholera_deaths_match_the_inprocess_tier(batch, recorder, deaths, frame, eps, min_points, method):
    fc = deaths.collection
    if frame == "lonlat":
        fc = _with_props(collection(_lonlat(deaths.geometries, deaths.srid), 4326, ids=deaths.ids), deaths.properties)
    inputs = {"features": fc, "eps": eps, "min_points": min_points, "method": method}
    here, there = _both(batch, recorder, "dbscan", inputs)
    got = [f["properties"]["cluster_id"] for f in there["features"]]
    assert got == [f["properties"]["cluster_id"] for f in here["features"]]
    assert [f["properties"] for f in there["features"]] == [f["properties"] for f in here["features"]]
    assert [f.get("id") for f in there["features"]] == [f.get("id") for f in here["features"]]
    assert there["srid"] == here["srid"]
    assert max(got) >= 1 and got.count(-1) > 0  # several clusters and some noise: a real test
    # Numbering by first member: cluster ids appear in increasing order of first occurrence.
    firsts = [c for i, c in enumerate(got) if c >= 0 and c not in got[:i]]
    assert firsts == list(range(len(firsts)))
    # Independently: every core point (scikit-learn's, in the same plane) is clustered.
    if frame == "web_mercator" and method == "planar":
        from sklearn.cluster import DBSCAN

        xy = shapely.get_coordinates(deaths.geometries)
        model = DBSCAN(eps=eps["value"], min_samples=min_points).fit(xy)
        core = np.zeros(len(xy), dtype=bool)
        core[model.core_sample_indices_] = True
        assert (np.asarray(got)[core] >= 0).all()
        assert ((np.asarray(got) == -1) == (model.labels_ == -1)).all()


def test_dbscan_border_point_joins_its_first_core_neighbour(batch, recorder):
    # eps 1, min_points 4. Point 6 (x=9) has 3 neighbours: a border point within eps of core 2
    # (x=8, cluster of 2, 3, 4, 7) and core 5 (x=10, cluster of 0, 1, 5, 8). It joins the cluster
    # of its lowest-index core neighbour (2), although the other cluster has the first member
    # (scikit-learn's expansion order would give it cluster 0).
    xs = [10.5, 11.0, 8.0, 7.5, 7.0, 10.0, 9.0, 7.2, 10.8]
    fc = {"type": "FeatureCollection", "srid": 32618,
          "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [500000.0 + x, 4e6]},
                        "properties": {"i": i}} for i, x in enumerate(xs)]}
    inputs = {"features": fc, "eps": {"value": 1.0, "unit": "meter"}, "min_points": 4}
    here, there = _both(batch, recorder, "dbscan", inputs)
    got = [f["properties"]["cluster_id"] for f in there["features"]]
    assert got == [f["properties"]["cluster_id"] for f in here["features"]]
    assert got == [0, 0, 1, 1, 1, 0, 1, 1, 0]


def _ogc_idw(client: Any, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    from controlplane.tasks import run_execute

    response = client.post("/ogcapi/processes/idw/execution", data=json.dumps(body),
                           content_type="application/json", headers={"Prefer": "respond-async"})
    assert response.status_code == 201, response.content
    job = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    run_execute(job)
    status = json.loads(client.get(f"/ogcapi/jobs/{job}").content)
    assert status["status"] == "successful", status
    results = json.loads(client.get(f"/ogcapi/jobs/{job}/results").content)
    result = results["result"]["value"] if "value" in results["result"] else results["result"]
    return job, result["features"]


@pytest.mark.django_db(transaction=True)
def test_ogc_idw_pinned_to_the_batch_tier_answers_as_the_inprocess_tier(batch_tasks, honua_catalog, client, baltim):
    from django.conf import settings

    from controlplane.models import ProcessRun, Tenant, TenantPolicyOverride
    from controlplane.services.policy import policy_cache_clear

    points = _lonlat(baltim.geometries, 3857, scale=100.0, origin=BALTIMORE_3857)
    fc = _with_props(collection(points, 4326), baltim.properties)
    fc.pop("srid")  # GeoJSON on the wire: lon/lat
    body = {"inputs": {"features": {"value": fc, "mediaType": "application/geo+json"}, "value_field": "PRICE",
                       "cell_size": {"value": 250, "unit": "meter"}, "max_neighbors": 6,
                       "search_radius": {"value": 1500, "unit": "meter"}},
            "response": "document"}
    tenant = Tenant.objects.get(slug=settings.HONUA["DEFAULT_TENANT"])
    override = TenantPolicyOverride.objects.create(tenant=tenant, process_id="idw", tier_order=["inprocess"])
    policy_cache_clear()
    job_here, here = _ogc_idw(client, body)
    override.tier_order = ["batch"]
    override.save()
    policy_cache_clear()
    job_there, there = _ogc_idw(client, body)

    assert ProcessRun.objects.get(id=job_here).tier_used == "inprocess"
    run = ProcessRun.objects.get(id=job_there)
    assert run.tier_used == "batch"
    assert [t["tier"] for t in run.tiers_tried] == ["batch"]
    assert len(there) == len(here) > 500
    _assert_same_grid({"srid": 0, "fields": None, "features": here}, {"srid": 0, "fields": None, "features": there})
    values = np.array([np.nan if f["properties"]["value"] is None else f["properties"]["value"] for f in there])
    assert np.isnan(values).any() and np.isfinite(values).any()


def test_dbscan_process_and_output_crs_match_the_inprocess_tier(batch, recorder, deaths):
    # Computed in the British National Grid's plane (process_srid, method planar), written in
    # lon/lat (out_srid): both tiers reproject alike.
    inputs = {"features": deaths.collection, "eps": {"value": 20, "unit": "meter"}, "min_points": 4,
              "method": "planar"}
    here, there = _both(batch, recorder, "dbscan", inputs, process_srid=27700, out_srid=4326)
    got = [f["properties"]["cluster_id"] for f in there["features"]]
    assert got == [f["properties"]["cluster_id"] for f in here["features"]]
    assert max(got) >= 1
    assert there["srid"] == here["srid"] == 4326
    np.testing.assert_allclose(
        shapely.get_coordinates(result_geometries(there)), shapely.get_coordinates(result_geometries(here)),
        rtol=0, atol=1e-9,
    )
    # In Web Mercator's plane the same 20 m are ~12.5 m on the ground at 51.5 N: other clusters.
    mercator = [f["properties"]["cluster_id"]
                for f in batch.execute("dbscan", {**inputs}, recorder.ctx("dbscan"))["result"]["features"]]
    assert mercator != got


@pytest.mark.parametrize(
    "change",
    [
        {"eps": {"value": 1, "unit": "degree"}},  # degrees on projected data
        {"eps": {"value": -1, "unit": "meter"}},
        {"method": "manhattan"},
        {"min_points": 0},
        {"features": {"type": "FeatureCollection", "srid": 32618, "features": [
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
             "properties": {}}]}},
    ],
)
def test_dbscan_bad_inputs_are_refused_on_both_tiers(batch, recorder, deaths, change):
    inputs = {"features": deaths.collection, "eps": {"value": 20, "unit": "meter"}, "min_points": 4, **change}
    with pytest.raises(InvalidInput):
        InProcessExecutor().execute("dbscan", inputs, ExecutionContext(run_id="t", process_id="dbscan",
                                                                       handler="dbscan"))
    with pytest.raises(InvalidInput):
        batch.execute("dbscan", inputs, recorder.ctx("dbscan"))
