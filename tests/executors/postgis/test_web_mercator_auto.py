"""The postgis tier's method ``auto`` on Web Mercator data: on the ground, as in-process
(registry and SQL version 2 alike); other projected CRSs stay planar."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.executor import InProcessExecutor
from executors.postgis.executor import PostGISExecutor
from executors.postgis.registry import FUNCTIONS, distance_in_frame, frame_for
from tests.executors.postgis.support import GEOD, fc, shape, wkb

SOHO = (-0.1367, 51.5133)
FIFTY_M = {"value": 50, "unit": "meter"}


def _ctx() -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="p", handler="h")


def _at_soho(srid: int) -> tuple[float, float]:
    return Transformer.from_crs(4326, srid, always_xy=True).transform(*SOHO)


@pytest.mark.parametrize(
    ("srid", "method", "expected"),
    [
        (3857, "auto", (50.0, "geodesic")),
        (102100, "auto", (50.0, "geodesic")),
        (3857, "planar", (50.0, "planar")),
        (3857, "geodesic", (50.0, "geodesic")),
        (32630, "auto", (50.0, "planar")),
        (32630, "geodesic", (50.0, "geodesic")),
        (2227, "auto", (50.0 / 0.3048006096012192, "planar")),
        (4326, "auto", (50.0, "auto")),
    ],
)
def test_distance_in_frame_follows_the_auto_rule(srid, method, expected):
    distance, sql_method = distance_in_frame(50.0, "meter", method, frame_for(srid), "distance")
    assert (distance, sql_method) == (pytest.approx(expected[0], rel=1e-12), expected[1])


def test_voronoi_tolerance_is_a_length_in_the_working_plane():
    build = FUNCTIONS["voronoi"].build
    assert build({}, frame_for(3857))[-1] == 0.0  # the SQL's relative minimum applies
    assert build({"tolerance": {"value": 2, "unit": "meter"}}, frame_for(4326))[-1] == 2.0
    feet = build({"tolerance": {"value": 1, "unit": "meter"}}, frame_for(2227))[-1]
    assert feet == pytest.approx(1 / 0.3048006096012192)
    with pytest.raises(InvalidInput, match="not degrees"):
        build({"tolerance": {"value": 1e-6, "unit": "degree"}}, frame_for(4326))
    with pytest.raises(InvalidInput, match="negative"):
        build({"tolerance": -1.0}, frame_for(3857))


@pytest.mark.django_db
def test_default_buffer_of_web_mercator_data_is_50_m_on_the_ground():
    x, y = _at_soho(3857)
    inputs = {"features": fc([shapely.Point(x, y)], srid=3857), "distance": FIFTY_M}
    [feature] = PostGISExecutor().execute("buffer", inputs, _ctx())["result"]["features"]
    ring = shapely.get_coordinates(shape(feature).exterior)
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(*ring.T)
    _, _, dist = GEOD.inv(np.full(len(ring), SOHO[0]), np.full(len(ring), SOHO[1]), lon, lat)
    np.testing.assert_allclose(dist, 50.0, rtol=1e-4)
    # the in-process tier draws the same 32-gon on the ground (turned a little: its local
    # frame's grid north is not the UTM zone's)
    [ours] = InProcessExecutor().execute("buffer", inputs, _ctx())["result"]["features"]
    assert shape(ours).area == pytest.approx(shape(feature).area, rel=1e-4)
    assert shape(ours).centroid.distance(shape(feature).centroid) < 1e-3
    planar = {**inputs, "method": "planar"}
    [feature] = PostGISExecutor().execute("buffer", planar, _ctx())["result"]["features"]
    ring = shapely.get_coordinates(shape(feature).exterior)
    np.testing.assert_allclose(np.hypot(ring[:, 0] - x, ring[:, 1] - y), 50.0, rtol=1e-9)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "expected"), [(None, [0, 0, 0, 0]), ("planar", [-1, -1, -1, -1])]
)
def test_dbscan_eps_on_web_mercator_is_on_the_ground_on_both_tiers(method, expected):
    # points 80 plane units apart are ~50 m apart on the ground (cos 51.5° = 0.62)
    x, y = _at_soho(3857)
    pts = [shapely.Point(x + 80 * i, y) for i in range(4)]
    inputs = {"features": fc(pts, srid=3857), "eps": {"value": 60, "unit": "meter"}}
    inputs["min_points"] = 2
    if method is not None:
        inputs["method"] = method
    for executor in (PostGISExecutor(), InProcessExecutor()):
        result = executor.execute("dbscan", inputs, _ctx())["result"]
        assert [f["properties"]["cluster_id"] for f in result["features"]] == expected


def test_sql_dbscan_auto_is_on_the_ground_for_web_mercator(as_role):
    """Version 2 of honua_gp.dbscan: p_method auto on EPSG:3857 takes p_eps as ground metres
    (version 1: plane units)."""
    x, y = _at_soho(3857)
    pts = [shapely.Point(x + 80 * i, y) for i in range(4)]
    sql = "SELECT cluster_id FROM honua_gp.dbscan(%s::bytea[], %s, %s, %s, %s) ORDER BY ordinal"
    assert [r[0] for r in as_role(sql, [wkb(pts), 3857, 60.0, 2, "auto"])] == [0, 0, 0, 0]
    assert [r[0] for r in as_role(sql, [wkb(pts), 3857, 60.0, 2, "planar"])] == [None] * 4
    assert math.isclose(80 * math.cos(math.radians(SOHO[1])), 49.8, rel_tol=1e-2)
