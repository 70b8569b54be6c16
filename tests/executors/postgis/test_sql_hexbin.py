"""honua_gp.hexbin through a cursor (as the execution role) and through the executor, checked
against shapely point-in-polygon tests over the returned hexagons."""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer

from executors.base import ExecutionContext, InvalidInput
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import GEOD, fc, geodesic_area, geom, shape, wkb

HEXBIN = (
    "SELECT ST_AsBinary(geom), grid_column, grid_row, point_count, value_sum, value_mean"
    " FROM honua_gp.hexbin(%s::bytea[], %s, %s, %s, %s::float8[]{extra})"
)


def hexbin(as_role, geoms, srid, size, include_empty=False, values=None, extra="", *params):
    rows = as_role(HEXBIN.format(extra=extra), [wkb(geoms), srid, size, include_empty, values, *params])
    return [(geom(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]


def regular_hexagon_area(size: float) -> float:
    return 3 * math.sqrt(3) / 2 * size * size


def check_against_point_in_polygon(rows, points, values):
    """Every point is covered by exactly one returned hexagon (random points: never on an
    edge) and each hexagon's count, sum and mean are those of the points it covers."""
    hexes = np.array([r[0] for r in rows], dtype=object)
    tree = shapely.STRtree(hexes)
    pi, hi = tree.query(np.array(points, dtype=object), predicate="within")
    assert np.array_equal(np.sort(pi), np.arange(len(points))), "a point is in 0 or 2+ hexagons"
    owner = np.empty(len(points), dtype=np.int64)
    owner[pi] = hi
    for k, (_, _, _, count, total, mean) in enumerate(rows):
        mine = np.flatnonzero(owner == k)
        assert count == len(mine)
        if values is not None:
            given = [values[m] for m in mine.tolist() if values[m] is not None]
            assert total == pytest.approx(sum(given), rel=1e-12, abs=1e-9)
            assert mean == (pytest.approx(sum(given) / len(given), rel=1e-12) if given else None)
        else:
            assert total is None and mean is None


def test_counts_and_sums_match_point_in_polygon(as_role):
    rng = np.random.default_rng(3)
    xy = np.vstack([rng.normal([500_000, 6_600_000], 300, (400, 2)), rng.uniform(499_000, 501_000, (100, 2))])
    points = list(shapely.points(xy))
    values = [None if k % 7 == 0 else float(rng.integers(0, 1000)) for k in range(len(points))]
    rows = hexbin(as_role, points, 32632, 100.0, False, values)
    check_against_point_in_polygon(rows, points, values)
    assert sum(r[3] for r in rows) == len(points) and all(r[3] > 0 for r in rows)
    assert [(r[1], r[2]) for r in rows] == sorted((r[1], r[2]) for r in rows)
    for g, *_ in rows:
        assert g.area == pytest.approx(regular_hexagon_area(100.0), rel=1e-12)
        assert len(g.exterior.coords) == 7


def test_without_values_only_counts(as_role):
    pts = list(shapely.points(np.random.default_rng(1).uniform(0, 50, (60, 2))))
    rows = hexbin(as_role, pts, 3857, 7.5)
    check_against_point_in_polygon(rows, pts, None)


def test_points_on_shared_edges_and_vertices_are_counted_once(as_role):
    size = 10.0
    h = size * math.sqrt(3) / 2
    # Centres, vertices (3 hexagons meet), mid-edges (2 meet), and points on odd columns.
    pts = [(0, 0), (size, 0), (size / 2, h), (-size / 2, -h), (0.75 * size, h / 2), (15, h), (15, 0), (0, h)]
    points = list(shapely.points(pts))
    rows = hexbin(as_role, points, 32632, size)
    assert sum(r[3] for r in rows) == len(points)
    for p in points:  # alone, each point comes back in one hexagon, which covers it
        (alone,) = hexbin(as_role, [p], 32632, size)
        assert alone[3] == 1 and alone[0].covers(p)
        assert any((r[1], r[2]) == (alone[1], alone[2]) for r in rows)


def test_include_empty_adds_the_hexagon_grid_over_the_extent(as_role):
    rng = np.random.default_rng(5)
    points = list(shapely.points(rng.uniform([0, 0], [100, 60], (30, 2))))
    rows = hexbin(as_role, points, 32632, 8.0, True)
    check_against_point_in_polygon(rows, points, None)
    hexes = [r[0] for r in rows]
    union = shapely.union_all(hexes)
    # The hexagons tile: no overlap (areas add up) and they cover the points' extent.
    assert union.area == pytest.approx(sum(h.area for h in hexes), rel=1e-9)
    assert union.covers(shapely.box(*shapely.MultiPoint(points).bounds))
    assert any(r[3] == 0 for r in rows)
    empty = [r for r in rows if r[3] == 0]
    assert all(r[4] is None and r[5] is None for r in empty)


def test_null_and_empty_geometries_are_not_counted(as_role):
    rows = hexbin(as_role, [shapely.Point(1, 1), None, shapely.Point(), shapely.Point(2, 1)], 3857, 10.0)
    assert [(r[1], r[2], r[3]) for r in rows] == [(0, 0, 2)]


def test_lon_lat_hexagons_cover_equal_ground_areas(as_role):
    rng = np.random.default_rng(8)
    lonlat = np.column_stack([rng.uniform(10.0, 10.1, 300), rng.uniform(60.0, 60.05, 300)])
    points = list(shapely.points(lonlat))
    rows = hexbin(as_role, points, 4326, 500.0)
    check_against_point_in_polygon(rows, points, None)
    for g, *_ in rows:
        # Equal-area frame; straight lon/lat edges between the corners differ by ~1e-6.
        assert geodesic_area(g) == pytest.approx(regular_hexagon_area(500.0), rel=2e-5)
    # Edge length on the ground ~ 500 m.
    g = rows[0][0]
    (x0, y0), (x1, y1) = g.exterior.coords[0], g.exterior.coords[1]
    assert GEOD.inv(x0, y0, x1, y1)[2] == pytest.approx(500.0, rel=1e-3)


@pytest.mark.parametrize(
    ("size", "include_empty", "values", "extra", "message"),
    [
        (0.0, False, None, "", "cell size must be a positive distance"),
        (float("nan"), False, None, "", "cell size must be a positive distance"),
        (1.0, False, [1.0], "", "values must have one element per geometry"),
        (0.01, True, None, ", 1000", "more than the limit of 1000"),
        (1e-9, False, None, "", "too small for coordinates"),
    ],
)
def test_invalid_parameters_raise_22023(as_role, size, include_empty, values, extra, message):
    pts = [shapely.Point(0, 0), shapely.Point(30, 40)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        as_role(HEXBIN.format(extra=", %s" if extra else ""),
                [wkb(pts), 3857, size, include_empty, values, *([int(extra[2:])] if extra else [])])


# -- through the executor --------------------------------------------------------------------


def _ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="hexbin", handler="hexbin", **kw)


@pytest.mark.django_db
def test_executor_sums_numbers_and_counts_the_rest():
    pts = list(shapely.points([(1, 1), (2, 2), (3, 1), (4, 2), (500, 500)]))
    features = fc(pts, srid=32632)
    for f, price in zip(features["features"], [10, 2.5, "12", None, True], strict=True):
        f["properties"]["price"] = price
    out = PostGISExecutor().execute(
        "hexbin", {"features": features, "cell_size": {"value": 100, "unit": "meter"}, "sum_field": "price"}, _ctx()
    )["result"]
    props = [f["properties"] for f in out["features"]]
    assert props == [
        {"grid_column": 0, "grid_row": 0, "count": 4, "sum": 12.5, "mean": 6.25},
        {"grid_column": 3, "grid_row": 2, "count": 1, "sum": 0.0, "mean": None},
    ]
    assert out["fields"] == [
        {"name": "grid_column", "type": "integer"}, {"name": "grid_row", "type": "integer"},
        {"name": "count", "type": "integer"}, {"name": "sum", "type": "number"}, {"name": "mean", "type": "number"},
    ]
    assert out["srid"] == 32632 and shape(out["features"][0]).area == pytest.approx(regular_hexagon_area(100))
    assert shape(out["features"][1]).contains(shapely.Point(500, 500))


@pytest.mark.django_db
def test_executor_cell_size_in_feet_and_output_crs():
    pts = list(shapely.points([(500_000, 6_600_000), (500_010, 6_600_010)]))
    out = PostGISExecutor().execute(
        "hexbin", {"features": fc(pts, srid=32632), "cell_size": {"value": 1000, "unit": "foot"}},
        _ctx(out_srid=4326),
    )["result"]
    assert out["srid"] == 4326 and len(out["features"]) == 1
    assert out["features"][0]["properties"]["count"] == 2
    g = shape(out["features"][0])
    lon, lat = Transformer.from_crs(32632, 4326, always_xy=True).transform([500_000, 500_010], [6_600_000, 6_600_010])
    assert all(g.contains(shapely.Point(x, y)) for x, y in zip(lon, lat, strict=True))
    # UTM's scale factor (~0.9996) makes the ground area a little larger than the plane's.
    assert geodesic_area(g) == pytest.approx(regular_hexagon_area(304.8), rel=2e-3)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("inputs", "limits", "message"),
    [
        ({"cell_size": {"value": 1, "unit": "degree"}}, {}, "not degrees"),
        ({"cell_size": {"value": -5, "unit": "meter"}}, {}, "must be positive"),
        ({"cell_size": {"value": 1, "unit": "meter"}, "include_empty": True}, {"max_cells": 50}, "more than the limit of 50"),
        ({"cell_size": {"value": 10, "unit": "meter"}, "sum_field": 3}, {}, "sum_field"),
    ],
)
def test_executor_refuses_bad_input_with_invalid_input(inputs, limits, message):
    pts = list(shapely.points([(0, 0), (100, 100)]))
    with pytest.raises(InvalidInput, match=message):
        PostGISExecutor().execute("hexbin", {"features": fc(pts, srid=3857), **inputs}, _ctx(limits=limits))
