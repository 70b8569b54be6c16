"""The in-process hexbin and idw fallbacks give the postgis tier's answers: the same hexagons
(vertex for vertex on projected data), counts, sums and interpolated values."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.executor import InProcessExecutor
from executors.inprocess.gridding import H
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import fc, shape


def _ctx(handler: str, **kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id=handler, handler=handler, **kw)


def _both(handler: str, inputs: dict, **kw) -> tuple[dict, dict]:
    ours = InProcessExecutor().execute(handler, inputs, _ctx(handler, **kw))["result"]
    theirs = PostGISExecutor().execute(handler, inputs, _ctx(handler, **kw))["result"]
    return ours, theirs


def _with(doc: dict, name: str, values: list) -> dict:
    for f, v in zip(doc["features"], values, strict=True):
        f["properties"][name] = v
    return doc


# -- against the postgis tier ------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


@pytestmark_db
@pytest.mark.parametrize("include_empty", [False, True])
def test_hexbin_tiers_agree_vertex_for_vertex_on_projected_data(include_empty):
    rng = np.random.default_rng(6)
    xy = np.vstack([rng.normal([500_000, 6_600_000], 200, (400, 2)), rng.uniform(-300, 300, (50, 2)) + [500_000, 6_600_000]])
    # Points on edges and vertices of the 50 m grid, where only the tie rule decides.
    size = 50.0
    h = size * 2 * H
    lattice = np.array([[3 * size, 0], [1.5 * size, h / 2], [size, 0], [0.75 * size * 10, h * 3]])
    pts = list(shapely.points(np.vstack([xy, lattice + [1.5 * size * 6666, h * 76212]]))) + [None]
    doc = _with(fc(pts, srid=32632), "w", [float(k % 13) if k % 5 else None for k in range(len(pts))])
    inputs = {"features": doc, "cell_size": {"value": size, "unit": "meter"}, "sum_field": "w", "include_empty": include_empty}
    ours, theirs = _both("hexbin", inputs)
    assert len(ours["features"]) == len(theirs["features"]) > 10
    for a, b in zip(ours["features"], theirs["features"], strict=True):
        pa, pb = a["properties"], b["properties"]
        assert (pa["grid_column"], pa["grid_row"], pa["count"]) == (pb["grid_column"], pb["grid_row"], pb["count"])
        assert pa["sum"] == pytest.approx(pb["sum"], rel=1e-12)
        assert pa["mean"] == (None if pb["mean"] is None else pytest.approx(pb["mean"], rel=1e-12))
        assert a["geometry"] == b["geometry"]
    assert ours["fields"] == theirs["fields"]


@pytestmark_db
def test_hexbin_tiers_agree_on_lon_lat_data_and_other_geometries():
    rng = np.random.default_rng(7)
    lonlat = np.column_stack([rng.uniform(-0.2, 0.2, 500), rng.uniform(51.4, 51.6, 500)])
    geoms = list(shapely.points(lonlat)) + [shapely.box(0, 51.5, 0.01, 51.51), shapely.LineString([(0, 51.45), (0.05, 51.46)])]
    inputs = {"features": fc(geoms, srid=4326), "cell_size": {"value": 2, "unit": "kilometer"}}
    ours, theirs = _both("hexbin", inputs)
    assert [f["properties"] for f in ours["features"]] == [f["properties"] for f in theirs["features"]]
    for a, b in zip(ours["features"], theirs["features"], strict=True):
        assert shape(a).equals_exact(shape(b), tolerance=1e-9)


@pytestmark_db
@pytest.mark.parametrize(
    ("srid", "extra"),
    [
        (32632, {}),
        (32632, {"search_radius": {"value": 60, "unit": "meter"}, "max_neighbors": 5, "power": 1.0}),
        (32632, {"extent": {"bbox": [8.99, 59.52, 9.01, 59.53], "srid": 4326}, "power": 3}),
        (4326, {"search_radius": {"value": 500, "unit": "meter"}}),
    ],
)
def test_idw_tiers_agree(srid, extra):
    rng = np.random.default_rng(11)
    if srid == 4326:
        xy = np.column_stack([rng.uniform(10.0, 10.04, 120), rng.uniform(60.0, 60.02, 120)])
    else:
        xy = rng.uniform([499_500, 6_599_500], [500_500, 6_600_100], (120, 2))
    doc = _with(fc(list(shapely.points(xy)), srid=srid), "z", rng.normal(10, 3, 120).tolist())
    inputs = {"features": doc, "value_field": "z", "cell_size": {"value": 40, "unit": "meter"}, **extra}
    ours, theirs = _both("idw", inputs)
    assert len(ours["features"]) == len(theirs["features"]) > 50
    for a, b in zip(ours["features"], theirs["features"], strict=True):
        pa, pb = a["properties"], b["properties"]
        assert (pa["grid_column"], pa["grid_row"]) == (pb["grid_column"], pb["grid_row"])
        assert (pa["value"] is None) == (pb["value"] is None)
        if pb["value"] is not None:
            assert pa["value"] == pytest.approx(pb["value"], rel=1e-9)
        if srid == 4326:
            assert shape(a).equals_exact(shape(b), tolerance=1e-9)
        else:
            assert a["geometry"] == b["geometry"]


@pytestmark_db
@pytest.mark.parametrize(
    ("handler", "inputs", "limits", "message"),
    [
        ("hexbin", {"cell_size": {"value": 1, "unit": "meter"}, "include_empty": True}, {"max_cells": 50}, "more than the limit of 50"),
        ("hexbin", {"cell_size": {"value": 2, "unit": "degree"}}, {}, "not degrees"),
        ("idw", {"value_field": "v", "cell_size": 1}, {"max_cells": 100}, "more than the limit of 100"),
        ("idw", {"value_field": "missing", "cell_size": 10}, {}, "no feature has a numeric 'missing'"),
        ("idw", {"value_field": "v", "cell_size": 10, "power": 11}, {}, "power"),
    ],
)
def test_both_tiers_refuse_the_same_input(handler, inputs, limits, message):
    doc = _with(fc(list(shapely.points([(0, 0), (100, 100)])), srid=3857), "v", [1.0, 2.0])
    for executor in (InProcessExecutor(), PostGISExecutor()):
        with pytest.raises(InvalidInput, match=message):
            executor.execute(handler, {"features": doc, **inputs}, _ctx(handler, limits=limits))
