"""honua_gp.buffer through a cursor, as the execution role, against known answers."""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer

from tests.executors.postgis.support import GEOD, geodesic_area, geom, wkb

BUFFER = "SELECT ordinal, ST_AsBinary(geom) FROM honua_gp.buffer(%s::bytea[], %s, %s{extra})"


def buffer(as_role, geoms, srid, distance, extra="", *params):
    rows = as_role(BUFFER.format(extra=extra), [wkb(geoms), srid, distance, *params])
    return [(o, geom(g)) for o, g in rows]


def test_planar_circle_area_is_the_inscribed_polygon_and_close_to_pi_r2(as_role):
    centre = shapely.Point(500_000, 6_650_000)
    [(ordinal, circle)] = buffer(as_role, [centre], 32632, 250.0, ", %s", 64)
    n = 4 * 64
    inscribed = n / 2 * 250.0**2 * math.sin(2 * math.pi / n)
    assert ordinal == 1
    assert circle.area == pytest.approx(inscribed, rel=1e-9)
    assert circle.area == pytest.approx(math.pi * 250.0**2, rel=1e-3)
    assert circle.centroid.distance(centre) < 1e-6


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(10.75, 59.91), (10.0, 60.0), (-58.4, -34.6), (3.0, 0.0), (-45.0, 86.5), (120.0, -82.0)],
)
def test_100_m_on_lon_lat_is_100_m_on_the_ground(as_role, lon, lat):
    [(_, circle)] = buffer(as_role, [shapely.Point(lon, lat)], 4326, 100.0)
    ring = np.asarray(circle.exterior.coords)
    _, _, dist = GEOD.inv(np.full(len(ring), lon), np.full(len(ring), lat), ring[:, 0], ring[:, 1])
    assert np.all(np.abs(dist - 100.0) < 0.5)  # the brief asks for 0.5 %
    assert np.all(np.abs(dist - 100.0) < 1e-3)  # the scale correction makes it ~exact
    n = 32
    assert geodesic_area(circle) == pytest.approx(
        n / 2 * 100.0**2 * math.sin(2 * math.pi / n), rel=1e-4
    )


def test_line_buffer_on_the_ground_has_the_area_of_a_stadium(as_role):
    line = shapely.LineString([(24.90, 60.15), (24.99, 60.19)])
    length = GEOD.geometry_length(line)
    [(_, poly)] = buffer(as_role, [line], 4326, 50.0, ", %s", 64)
    assert geodesic_area(poly) == pytest.approx(2 * 50.0 * length + math.pi * 50.0**2, rel=2e-3)


def test_flat_caps_and_mitre_joins_in_a_projected_crs(as_role):
    # UTM 32N, method auto: planar in its own plane (Web Mercator would be on the ground)
    line = shapely.LineString([(0, 0), (1000, 0), (1000, 1000)])
    [(_, poly)] = buffer(as_role, [line], 32632, 10.0, ", %s, %s, %s", 8, "flat", "mitre")
    assert poly.area == pytest.approx(2 * 10 * 2000, rel=1e-9)
    assert shapely.Point(1010, -10).distance(poly) < 1e-6  # the mitred outer corner


def test_null_and_empty_inputs_keep_their_place(as_role):
    rows = buffer(as_role, [shapely.Point(1, 1), None, shapely.Point()], 3857, 1.0)
    assert [o for o, _ in rows] == [1, 2, 3]
    assert rows[0][1].area > 3 and rows[1][1] is None and rows[2][1].is_empty


def test_geographic_empty_input_gives_an_empty_polygon(as_role):
    rows = buffer(as_role, [shapely.Point()], 4326, 10.0)
    assert rows[0][1].is_empty


def test_dissolve_unions_everything_into_one_row(as_role):
    pts = [shapely.Point(0, 0), shapely.Point(10, 0), shapely.Point(100, 0)]
    rows = buffer(as_role, pts, 32632, 6.0, ", %s, %s, %s, %s, %s", 16, "round", "round", 5.0, True)
    assert len(rows) == 1 and rows[0][0] is None
    expected = shapely.union_all([p.buffer(6.0, quad_segs=16) for p in pts])
    assert rows[0][1].symmetric_difference(expected).area < 1e-6 * expected.area


def test_planar_method_on_lon_lat_takes_degrees(as_role):
    rows = buffer(
        as_role,
        [shapely.Point(10, 60)],
        4326,
        0.5,
        ", %s, %s, %s, %s, %s, %s",
        8,
        "round",
        "round",
        5.0,
        False,
        "planar",
    )
    assert rows[0][1].bounds == pytest.approx((9.5, 59.5, 10.5, 60.5))


def test_geodesic_method_on_projected_input_measures_on_the_ground(as_role):
    to_lonlat = Transformer.from_crs(3857, 4326, always_xy=True)
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(10.0, 60.0)
    rows = buffer(
        as_role,
        [shapely.Point(x, y)],
        3857,
        100.0,
        ", %s, %s, %s, %s, %s, %s",
        8,
        "round",
        "round",
        5.0,
        False,
        "geodesic",
    )
    ring = np.asarray(rows[0][1].exterior.coords)
    assert (ring[:, 0].max() - ring[:, 0].min()) / 2 > 190  # Web Mercator doubles lengths at 60N
    lon, lat = to_lonlat.transform(ring[:, 0], ring[:, 1])
    _, _, dist = GEOD.inv(np.full(len(ring), 10.0), np.full(len(ring), 60.0), lon, lat)
    assert np.all(np.abs(dist - 100.0) < 0.01)


def _ground_radii(rows, srid, lon, lat):
    ring = np.asarray(rows[0][1].exterior.coords)
    rlon, rlat = Transformer.from_crs(srid, 4326, always_xy=True).transform(ring[:, 0], ring[:, 1])
    _, _, dist = GEOD.inv(np.full(len(ring), lon), np.full(len(ring), lat), rlon, rlat)
    return np.asarray(dist)


@pytest.mark.parametrize("srid", [3857, 102100, 3785])
def test_auto_method_on_web_mercator_measures_on_the_ground(as_role, srid):
    """Version 2: 100 m of Web Mercator data with method auto are 100 m on the ground in Soho
    (version 1: 100 plane units, 62 m); planar keeps the plane."""
    lon, lat = -0.1367, 51.5133
    x, y = Transformer.from_crs(4326, srid, always_xy=True).transform(lon, lat)
    extra, before = ", %s, %s, %s, %s, %s, %s", (8, "round", "round", 5.0, False)
    point = [shapely.Point(x, y)]
    auto = buffer(as_role, point, srid, 100.0, extra, *before, "auto")
    np.testing.assert_allclose(_ground_radii(auto, srid, lon, lat), 100.0, atol=0.01)
    default = buffer(as_role, point, srid, 100.0)
    assert default[0][1].equals_exact(auto[0][1], 1e-9)
    planar = buffer(as_role, point, srid, 100.0, extra, *before, "planar")
    ring = np.asarray(planar[0][1].exterior.coords)
    np.testing.assert_allclose(np.hypot(ring[:, 0] - x, ring[:, 1] - y), 100.0, rtol=1e-9)
    np.testing.assert_allclose(
        _ground_radii(planar, srid, lon, lat), 100.0 * math.cos(math.radians(lat)), rtol=0.005
    )


@pytest.mark.parametrize("srid", [3857, 900913, 102100, 102113, 3785])
def test_auto_method_is_geodesic_for_every_web_mercator_code(as_role, srid):
    # (PostGIS's own 900913 entry differs from PROJ's Web Mercator in y, and pyproj does not
    # know EPSG:102113: compared with the geodesic method of the same function.)
    point = [shapely.Point(-15217.4, 6712597.8)]
    extra, before = ", %s, %s, %s, %s, %s, %s", (8, "round", "round", 5.0, False)
    [(_, auto)] = buffer(as_role, point, srid, 100.0)
    [(_, geodesic)] = buffer(as_role, point, srid, 100.0, extra, *before, "geodesic")
    [(_, planar)] = buffer(as_role, point, srid, 100.0, extra, *before, "planar")
    assert auto.equals_exact(geodesic, 1e-9)
    assert auto.area > 2 * planar.area  # 1 / cos²(51.5°) = 2.6


def test_auto_method_on_other_projected_crs_stays_planar(as_role):
    x, y = Transformer.from_crs(4326, 32630, always_xy=True).transform(-0.1367, 51.5133)
    [(_, poly)] = buffer(as_role, [shapely.Point(x, y)], 32630, 100.0)
    ring = np.asarray(poly.exterior.coords)
    np.testing.assert_allclose(np.hypot(ring[:, 0] - x, ring[:, 1] - y), 100.0, rtol=1e-9)


def test_a_buffer_across_the_antimeridian_is_split_there(as_role):
    [(_, poly)] = buffer(as_role, [shapely.Point(179.9995, -16.5)], 4326, 200.0)
    assert poly.geom_type == "MultiPolygon" and len(poly.geoms) == 2
    minx, _, maxx, _ = poly.bounds
    assert minx == pytest.approx(-180.0, abs=0.01) and maxx == pytest.approx(180.0, abs=1e-9)
    n = 32
    assert geodesic_area(poly) == pytest.approx(
        n / 2 * 200.0**2 * math.sin(2 * math.pi / n), rel=1e-3
    )


@pytest.mark.parametrize(
    ("extra", "params", "message"),
    [
        (", %s", [0], "quad_segs"),
        (", %s, %s", [8, "pointy"], "end cap"),
        (", %s, %s, %s", [8, "round", "star"], "join"),
        (", %s, %s, %s, %s, %s, %s", [8, "round", "round", 5.0, False, "warp"], "method"),
    ],
)
def test_invalid_parameters_raise_22023(as_role, extra, params, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        buffer(as_role, [shapely.Point(0, 0)], 3857, 1.0, extra, *params)


def test_unknown_srid_and_non_finite_distance_raise_22023(as_role):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="EPSG:999999"):
        buffer(as_role, [shapely.Point(0, 0)], 999999, 1.0)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="finite"):
        buffer(as_role, [shapely.Point(0, 0)], 3857, float("nan"))
