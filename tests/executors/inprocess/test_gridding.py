"""The in-process hexbin and idw (no database): the hexagon maths against brute force and
PostGIS's published rules, IDW against a full distance matrix, hexbin against shapely."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Geod
from scipy.spatial import cKDTree

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.executor import InProcessExecutor
from executors.inprocess.gridding import H, hex_cells, hexagon_grid, hexagons, idw_values

GEOD = Geod(ellps="WGS84")


def _run(handler: str, inputs: dict, **kw) -> dict:
    ctx = ExecutionContext(run_id="r", process_id=handler, handler=handler, **kw)
    return InProcessExecutor().execute(handler, inputs, ctx)["result"]


def _fc(lonlat: np.ndarray, srid: int = 4326, **props) -> dict:
    return {
        "type": "FeatureCollection",
        "srid": srid,
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
             "properties": {k: v[i] for k, v in props.items()}}
            for i, (x, y) in enumerate(lonlat)
        ],
    }


def test_hex_cells_pick_the_nearest_centre():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1000, 1000, (5000, 2))
    size = 37.5
    i, j = hex_cells(xy, size)
    # Brute force over a 5 x 5 neighbourhood of cells around each point.
    w, h = 1.5 * size, size * 2 * H
    best = np.full(len(xy), np.inf)
    for di in range(-2, 3):
        for dj in range(-2, 3):
            ci = np.round(xy[:, 0] / w).astype(np.int64) + di
            cj = np.round(xy[:, 1] / h).astype(np.int64) + dj
            d = np.hypot(xy[:, 0] - 1.5 * size * ci, xy[:, 1] - h * (cj + 0.5 * (ci & 1)))
            best = np.minimum(best, d)
    mine = np.hypot(xy[:, 0] - 1.5 * size * i, xy[:, 1] - h * (j + 0.5 * (i & 1)))
    assert np.allclose(mine, best, rtol=0, atol=1e-9)
    polys = hexagons(size, i, j, None)
    assert shapely.covers(polys, shapely.points(xy)).all()


def test_idw_values_match_a_full_distance_matrix():

    rng = np.random.default_rng(1)
    xy, vals, centres = rng.uniform(0, 100, (80, 2)), rng.normal(0, 1, 80), rng.uniform(0, 100, (300, 2))
    centres[0] = xy[5]
    d = np.sqrt(((centres[:, None] - xy[None]) ** 2).sum(axis=2))
    got = idw_values(cKDTree(xy), vals, centres, 2.0, 7, 15.0)
    for row, value in zip(d, got, strict=True):
        near = np.argsort(row)[:7]
        near = near[row[near] <= 15.0]
        if len(near) == 0:
            assert math.isnan(value)
        elif row[near[0]] == 0:
            assert value == vals[near[0]]
        else:
            assert value == pytest.approx((vals[near] / row[near] ** 2).sum() / (1 / row[near] ** 2).sum(), rel=1e-12)


def test_hexagon_grid_is_st_hexagongrid_cell_selection_without_a_database():
    # A box whose corners are on cell boundaries: the float4-rounded bounds decide.
    cells = hexagon_grid(1.0, (0.0, 0.0, 3.0, 3.0))
    assert cells == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]


def test_lon_lat_hexbin_counts_match_shapely_and_hexagons_cover_equal_ground_areas():
    rng = np.random.default_rng(12)
    lonlat = np.column_stack([rng.uniform(-122.5, -122.3, 400), rng.uniform(37.7, 37.8, 400)])
    out = _run("hexbin", {"features": _fc(lonlat, w=list(range(400))), "cell_size": {"value": 1500, "unit": "meter"},
                          "sum_field": "w"})
    hexes = np.array([shapely.geometry.shape(f["geometry"]) for f in out["features"]], dtype=object)
    pi, hi = shapely.STRtree(hexes).query(shapely.points(lonlat), predicate="within")
    assert np.array_equal(np.sort(pi), np.arange(400))
    counts = np.bincount(hi, minlength=len(hexes))
    sums = np.bincount(hi, weights=pi.astype(float), minlength=len(hexes))
    assert [f["properties"]["count"] for f in out["features"]] == counts.tolist()
    assert np.allclose([f["properties"]["sum"] for f in out["features"]], sums, rtol=1e-12)
    areas = [abs(GEOD.geometry_area_perimeter(h)[0]) for h in hexes]
    assert np.allclose(areas, 3 * math.sqrt(3) / 2 * 1500**2, rtol=2e-5)


def test_empty_input_gives_no_hexagons_and_idw_refuses_it():
    empty = {"type": "FeatureCollection", "srid": 3857, "features": []}
    out = _run("hexbin", {"features": empty, "cell_size": 10})
    assert out["features"] == [] and out["srid"] == 3857
    with pytest.raises(InvalidInput, match="no feature has a numeric 'v'"):
        _run("idw", {"features": empty, "value_field": "v", "cell_size": 10})
