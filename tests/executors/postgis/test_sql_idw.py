"""honua_gp.idw through a cursor (as the execution role) and through the executor, against an
independent IDW in numpy (full pairwise distance matrix, the textbook formula)."""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import GEOD, fc, geom, shape, wkb

IDW = (
    "SELECT ST_AsBinary(geom), grid_column, grid_row, value"
    " FROM honua_gp.idw(%s::bytea[], %s, %s, %s, %s, %s, %s::float8[], %s::float8[]{extra})"
)


def idw(as_role, geoms, srid, values, cell, power=2.0, radius=None, k=12, extent=None, extra="", *params):
    rows = as_role(IDW.format(extra=extra), [wkb(geoms), srid, cell, power, radius, k, extent, values, *params])
    return [(geom(r[0]), r[1], r[2], r[3]) for r in rows]


def reference_idw(samples: np.ndarray, values: np.ndarray, centres: np.ndarray, power, k, radius=None):
    """Textbook IDW over a full distance matrix: the k nearest within radius."""
    d = np.sqrt(((centres[:, None, :] - samples[None, :, :]) ** 2).sum(axis=2))
    out = []
    for row in d:
        order = np.argsort(row, kind="stable")[:k]
        if radius is not None:
            order = order[row[order] <= radius]
        if len(order) == 0:
            out.append(None)
        elif row[order[0]] == 0:
            out.append(float(values[order][row[order] == 0].mean()))
        else:
            w = 1.0 / row[order] ** power
            out.append(float((w * values[order]).sum() / w.sum()))
    return out


def centres_of(rows) -> np.ndarray:
    return np.array([[g.centroid.x, g.centroid.y] for g, *_ in rows])


def assert_values(got, want, rel=1e-9):
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want, strict=True):
        if w is not None:
            assert g == pytest.approx(w, rel=rel, abs=1e-12)


@pytest.mark.parametrize(("power", "k", "radius"), [(2.0, 12, None), (1.5, 5, None), (3.0, 8, 40.0), (0.0, 4, None)])
def test_values_match_a_full_distance_matrix_reference(as_role, power, k, radius):
    rng = np.random.default_rng(21)
    xy = rng.uniform([500_000, 6_600_000], [501_000, 6_600_600], (150, 2))
    values = rng.normal(100, 30, len(xy))
    rows = idw(as_role, list(shapely.points(xy)), 32632, values.tolist(), 50.0, power, radius, k)
    assert len(rows) == math.ceil((xy[:, 0].max() - xy[:, 0].min()) / 50) * math.ceil((xy[:, 1].max() - xy[:, 1].min()) / 50)
    assert_values([r[3] for r in rows], reference_idw(xy, values, centres_of(rows), power, k, radius))
    if radius is not None:
        assert any(r[3] is None for r in rows)


def test_grid_starts_at_the_north_west_corner_of_the_extent(as_role):
    xy = np.array([[10.0, 10.0], [90.0, 50.0], [40.0, 30.0]])
    rows = idw(as_role, list(shapely.points(xy)), 3857, [1.0, 2.0, 3.0], 25.0, extent=[0, 0, 110, 60])
    assert [(r[1], r[2]) for r in rows[:6]] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1)]
    assert len(rows) == 5 * 3  # ceil(110 / 25) x ceil(60 / 25)
    assert rows[0][0].equals(shapely.box(0, 35, 25, 60))
    assert rows[-1][0].equals(shapely.box(100, -15, 125, 10))
    cells = shapely.union_all([r[0] for r in rows])
    assert cells.area == pytest.approx(sum(r[0].area for r in rows)) and cells.covers(shapely.box(0, 0, 110, 60))
    assert_values([r[3] for r in rows], reference_idw(xy, np.array([1.0, 2.0, 3.0]), centres_of(rows), 2.0, 12))


def test_a_sample_on_a_cell_centre_gives_its_own_value(as_role):
    # Cells of 10 from (0, 40): centres at 5, 15, 25 ... and 35, 25, 15, 5.
    pts = [shapely.Point(0, 0), shapely.Point(15, 25), shapely.Point(40, 40), shapely.Point(15, 25)]
    rows = idw(as_role, pts, 32632, [1.0, 7.0, 3.0, 9.0], 10.0)
    cell = next(r for r in rows if r[0].centroid.equals(shapely.Point(15, 25)))
    assert cell[3] == 8.0  # the mean of the two samples there


def test_samples_without_a_value_or_geometry_are_left_out(as_role):
    pts = [shapely.Point(0, 0), None, shapely.Point(10, 10), shapely.Point(5, 5)]
    rows = idw(as_role, pts, 3857, [1.0, 50.0, 3.0, None], 5.0)
    xy = np.array([[0, 0], [10, 10]], dtype=float)
    assert_values([r[3] for r in rows], reference_idw(xy, np.array([1.0, 3.0]), centres_of(rows), 2.0, 12))


def test_lon_lat_distances_are_metres_on_the_ground(as_role):
    rng = np.random.default_rng(4)
    lonlat = np.column_stack([rng.uniform(10.0, 10.05, 60), rng.uniform(60.0, 60.02, 60)])
    values = rng.uniform(0, 10, 60)
    rows = idw(as_role, list(shapely.points(lonlat)), 4326, values.tolist(), 250.0, 2.0, 600.0, 6)
    # The reference: geodesic distances from each cell's centre (the centroid of its corners).
    got, want = [], []
    for g, _, _, value in rows:
        c = np.array(g.exterior.coords[:4]).mean(axis=0)
        _, _, d = GEOD.inv(np.full(60, c[0]), np.full(60, c[1]), lonlat[:, 0], lonlat[:, 1])
        order = np.argsort(d)[:6]
        order = order[d[order] <= 600.0]
        got.append(value)
        want.append(None if len(order) == 0 else float((values[order] / d[order] ** 2).sum() / (1 / d[order] ** 2).sum()))
    # Far from the radius edge the two agree to the frame's error (~1e-5 relative).
    both = [(g, w) for g, w in zip(got, want, strict=True) if g is not None and w is not None]
    assert len(both) > 20
    assert all(g == pytest.approx(w, rel=1e-3) for g, w in both)
    side = GEOD.inv(*rows[0][0].exterior.coords[0], *rows[0][0].exterior.coords[1])[2]
    assert side == pytest.approx(250.0, rel=1e-3)


@pytest.mark.parametrize(
    ("cell", "power", "radius", "k", "extent", "values", "message"),
    [
        (0.0, 2.0, None, 12, None, [1.0, 2.0], "cell size must be a positive distance"),
        (1.0, -1.0, None, 12, None, [1.0, 2.0], "power must be between 0 and 10"),
        (1.0, 2.0, 0.0, 12, None, [1.0, 2.0], "search radius must be a positive distance"),
        (1.0, 2.0, None, 0, None, [1.0, 2.0], "max_neighbors must be at least 1"),
        (1.0, 2.0, None, 12, [5, 0, 1, 1], [1.0, 2.0], "extent must be"),
        (1.0, 2.0, None, 12, None, [1.0], "values must have one element per geometry"),
        (1.0, 2.0, None, 12, None, [None, None], "at least one sample"),
        (0.01, 2.0, None, 12, None, [1.0, 2.0], "more than the limit of 250000"),
    ],
)
def test_invalid_parameters_raise_22023(as_role, cell, power, radius, k, extent, values, message):
    pts = [shapely.Point(0, 0), shapely.Point(30, 40)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        idw(as_role, pts, 3857, values, cell, power, radius, k, extent)


# -- through the executor --------------------------------------------------------------------


def _ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="idw", handler="idw", **kw)


def _features(xy, values, srid=32632):
    doc = fc(list(shapely.points(xy)), srid=srid)
    for f, v in zip(doc["features"], values, strict=True):
        f["properties"]["depth"] = v
    return doc


@pytest.mark.django_db
def test_executor_reads_the_value_field_and_writes_cells():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 1000, (40, 2))
    vals = rng.uniform(0, 5, 40)
    raw = [None if k == 3 else ("deep" if k == 4 else float(v)) for k, v in enumerate(vals)]
    out = PostGISExecutor().execute(
        "idw",
        {"features": _features(xy, raw), "value_field": "depth", "cell_size": {"value": 0.2, "unit": "kilometer"},
         "extent": {"bbox": [0, 0, 1000, 1000], "srid": 32632}, "power": 2, "max_neighbors": 6},
        _ctx(),
    )["result"]
    assert len(out["features"]) == 25 and out["srid"] == 32632
    assert out["fields"] == [{"name": "grid_column", "type": "integer"}, {"name": "grid_row", "type": "integer"},
                             {"name": "value", "type": "number"}]
    keep = np.array([k not in (3, 4) for k in range(40)])
    cells = [shape(f) for f in out["features"]]
    want = reference_idw(xy[keep], vals[keep], np.array([[c.centroid.x, c.centroid.y] for c in cells]), 2.0, 6)
    assert_values([f["properties"]["value"] for f in out["features"]], want)
    assert out["features"][0]["properties"]["grid_column"] == 0 and cells[0].equals(shapely.box(0, 800, 200, 1000))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("inputs", "limits", "message"),
    [
        ({"value_field": "nope", "cell_size": 10}, {}, "no feature has a numeric 'nope'"),
        ({"cell_size": 10}, {}, "value_field"),
        ({"value_field": "depth", "cell_size": 1}, {"max_cells": 100}, "more than the limit of 100"),
        ({"value_field": "depth", "cell_size": 10, "power": -2}, {}, "power"),
        ({"value_field": "depth", "cell_size": 10, "search_radius": {"value": 1, "unit": "degree"}}, {}, "not degrees"),
        ({"value_field": "depth", "cell_size": 10, "extent": {"bbox": [5, 5, 1, 1]}}, {}, "extent"),
    ],
)
def test_executor_refuses_bad_input_with_invalid_input(inputs, limits, message):
    doc = _features([(0, 0), (100, 100)], [1.0, 2.0])
    with pytest.raises(InvalidInput, match=message):
        PostGISExecutor().execute("idw", {"features": doc, **inputs}, _ctx(limits=limits))
