"""Linear units honoured on the ground; working and output spatial references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from executors.base import InvalidInput
from tests.executors.inprocess.support import (
    GEOD,
    fc,
    geoms,
    ground_distances,
    meters,
    run,
)

LATITUDES = [0.0005, 0.3, 23.5, 45.0, 60.0, -33.9, 71.2, 84.0]


@pytest.mark.parametrize("lat", LATITUDES)
def test_100m_buffer_on_wgs84_is_100m_on_the_ground(lat):
    lon = 10.75
    result = run("buffer", {"features": fc([shapely.Point(lon, lat)]), "distance": meters(100)})
    (polygon,) = geoms(result)
    assert result["srid"] == 4326 and polygon.geom_type == "Polygon"
    dist = ground_distances(lon, lat, polygon.exterior)
    assert np.all(np.abs(dist - 100.0) <= 0.5), (dist.min(), dist.max())  # 0.5 %
    assert np.all(np.abs(dist - 100.0) <= 0.001)  # and in fact to the millimetre


def test_buffer_of_many_points_spread_over_the_globe_is_accurate_everywhere():
    rng = np.random.default_rng(7)
    lonlat = np.column_stack([rng.uniform(-179, 179, 300), rng.uniform(-80, 80, 300)])
    result = run(
        "buffer", {"features": fc(list(shapely.points(lonlat))), "distance": meters(2, "kilometer")}
    )
    for (lon, lat), polygon in zip(lonlat, geoms(result), strict=True):
        dist = ground_distances(lon, lat, polygon.exterior)
        assert np.all(np.abs(dist - 2000.0) <= 2000.0 * 0.005)


def test_buffer_in_feet_and_miles_converts_units():
    result = run(
        "buffer",
        {"features": fc([shapely.Point(-122.4, 37.8)]), "distance": meters(328.084, "foot")},
    )
    dist = ground_distances(-122.4, 37.8, geoms(result)[0].exterior)
    assert np.allclose(dist, 100.0, rtol=1e-4)
    result = run(
        "buffer", {"features": fc([shapely.Point(-122.4, 37.8)]), "distance": meters(1, "mile")}
    )
    dist = ground_distances(-122.4, 37.8, geoms(result)[0].exterior)
    assert np.allclose(dist, 1609.344, rtol=1e-4)


def test_buffer_in_web_mercator_is_planar_in_crs_units():
    r = 250.0
    result = run(
        "buffer",
        {"features": fc([shapely.Point(0, 0)], srid=3857), "distance": meters(r), "quad_segs": 64},
    )
    (polygon,) = geoms(result)
    assert result["srid"] == 3857
    assert polygon.area == pytest.approx(math.pi * r * r, rel=0.01)


def test_geodesic_method_on_web_mercator_gives_ground_distance():
    lon, lat = 10.0, 60.0
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    result = run(
        "buffer",
        {
            "features": fc([shapely.Point(x, y)], srid=3857),
            "distance": meters(100),
            "method": "geodesic",
        },
        out_srid=4326,
    )
    (polygon,) = geoms(result)
    dist = ground_distances(lon, lat, polygon.exterior)
    assert np.allclose(dist, 100.0, rtol=1e-4)
    default = run(
        "buffer",
        {"features": fc([shapely.Point(x, y)], srid=3857), "distance": meters(100)},
        out_srid=4326,
    )
    # method auto on Web Mercator: on the ground, as geodesic
    assert np.allclose(ground_distances(lon, lat, geoms(default)[0].exterior), 100.0, rtol=1e-4)
    planar = run(
        "buffer",
        {
            "features": fc([shapely.Point(x, y)], srid=3857),
            "distance": meters(100),
            "method": "planar",
        },
    )
    # planar metres of Web Mercator at 60N are half a metre on the ground
    radius = geoms(planar)[0].bounds[2] - x
    assert radius == pytest.approx(100.0, rel=1e-3)


def test_projected_crs_in_us_survey_feet_uses_its_unit():
    # EPSG:2227 (California zone 3) is in US survey feet: 100 m = 328.083 ftUS
    result = run(
        "buffer",
        {"features": fc([shapely.Point(6000000, 2100000)], srid=2227), "distance": meters(100)},
    )
    polygon = geoms(result)[0]
    assert polygon.bounds[2] - 6000000 == pytest.approx(100 / 0.3048006096012192, rel=1e-9)


def test_degree_distance_is_planar_degrees_and_needs_geographic_data():
    result = run(
        "buffer", {"features": fc([shapely.Point(10, 50)]), "distance": meters(1, "degree")}
    )
    assert geoms(result)[0].bounds == pytest.approx((9, 49, 11, 51))
    with pytest.raises(InvalidInput, match="degrees"):
        run(
            "buffer",
            {"features": fc([shapely.Point(0, 0)], srid=3857), "distance": meters(1, "degree")},
        )


def test_process_srid_computes_in_that_crs_and_out_srid_sets_the_output():
    # computing in UTM 32N: 1000 m planar in UTM, output in Web Mercator
    result = run(
        "buffer",
        {"features": fc([shapely.Point(9.0, 48.0)]), "distance": meters(1000)},
        process_srid=32632,
        out_srid=3857,
    )
    assert result["srid"] == 3857
    polygon = geoms(result)[0]
    to_utm = Transformer.from_crs(3857, 32632, always_xy=True)
    centre = Transformer.from_crs(4326, 32632, always_xy=True).transform(9.0, 48.0)
    xs, ys = to_utm.transform(*shapely.get_coordinates(polygon).T)
    assert np.allclose(np.hypot(xs - centre[0], ys - centre[1]), 1000.0, rtol=1e-6)


def test_line_buffer_across_many_degrees_stays_true_on_the_ground():
    line = shapely.LineString([(-20, 40), (20, 40.5)])
    result = run("buffer", {"features": fc([line]), "distance": meters(5, "kilometer")})
    polygon = geoms(result)[0]
    assert polygon.is_valid and polygon.contains(line)
    # the outline's middle vertices are 5 km (north-south) from the line
    for lon in (-15.0, -1.0, 0.5, 12.0):
        lat_line = 40 + 0.5 * (lon + 20) / 40
        top = shapely.intersection(polygon.exterior, shapely.LineString([(lon, 30), (lon, 50)]))
        lats = shapely.get_coordinates(top)[:, 1]
        _, _, d = GEOD.inv(lon, lat_line, lon, lats.max())
        assert d == pytest.approx(5000.0, rel=0.005)


def test_buffer_across_the_antimeridian_is_split_at_180():
    result = run(
        "buffer", {"features": fc([shapely.Point(179.9995, -17.0)]), "distance": meters(100)}
    )
    polygon = geoms(result)[0]
    assert polygon.geom_type == "MultiPolygon"
    minx, _, maxx, _ = polygon.bounds
    assert minx >= -180 and maxx <= 180
    west, east = sorted(polygon.geoms, key=lambda p: p.bounds[0])
    assert west.bounds[0] == -180 and east.bounds[2] == 180
    assert np.all(ground_distances(179.9995, -17.0, east.exterior) <= 100.0 + 1e-3)


def test_near_pole_buffer_does_not_crash():
    result = run("buffer", {"features": fc([shapely.Point(45, 89.9999)]), "distance": meters(100)})
    assert geoms(result)[0] is not None


def test_project_wgs84_to_web_mercator_exact_coordinates():
    result = run(
        "project",
        {
            "features": fc([shapely.Point(0, 0), shapely.Point(180, 0), shapely.Point(10, 60)]),
            "target_srid": {"srid": 3857},
        },
    )
    assert result["srid"] == 3857
    coords = [f["geometry"]["coordinates"] for f in result["features"]]
    assert coords[0] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert coords[1] == pytest.approx([20037508.342789244, 0.0], abs=1e-6)
    assert coords[2] == pytest.approx([1113194.9079327357, 8399737.889818357], abs=1e-6)


def test_project_uses_out_srid_and_round_trips():
    there = run(
        "project",
        {"features": fc([shapely.LineString([(-122.4, 37.8), (-122.3, 37.9)])])},
        out_srid=26910,
    )
    back = run("project", {"features": there, "target_srid": {"srid": 4326}})
    assert geoms(back)[0].equals_exact(shapely.LineString([(-122.4, 37.8), (-122.3, 37.9)]), 1e-9)
    with pytest.raises(InvalidInput, match="target_srid"):
        run("project", {"features": fc([shapely.Point(0, 0)])})


def test_unknown_srid_is_invalid_input():
    with pytest.raises(InvalidInput, match="EPSG:999999"):
        run("project", {"features": fc([shapely.Point(0, 0)]), "target_srid": {"srid": 999999}})


def test_buffer_on_another_datum_and_angular_unit_uses_its_ellipsoid():
    # EPSG:4807 (NTF Paris): grads from the Paris meridian on the Clarke 1880 (IGN) ellipsoid
    clarke = Geod(a=6378249.2, b=6356515.0)
    lon_g, lat_g = 2.5, 52.0  # grads
    result = run(
        "buffer",
        {"features": fc([shapely.Point(lon_g, lat_g)], srid=4807), "distance": meters(100)},
    )
    assert result["srid"] == 4807
    coords = shapely.get_coordinates(geoms(result)[0].exterior) * 0.9  # grads -> degrees
    _, _, dist = clarke.inv(
        np.full(len(coords), lon_g * 0.9),
        np.full(len(coords), lat_g * 0.9),
        coords[:, 0],
        coords[:, 1],
    )
    assert np.allclose(dist, 100.0, rtol=1e-5)


def test_wide_polygon_buffer_is_split_into_bands_and_reunited():
    wide = shapely.box(-30, 10, 30, 11)
    result = run("buffer", {"features": fc([wide]), "distance": meters(10, "kilometer")})
    polygon = geoms(result)[0]
    assert polygon.geom_type == "Polygon" and polygon.is_valid and polygon.contains(wide)
    for lon in (-29.0, -7.3, 0.0, 18.9):
        south = shapely.intersection(polygon.exterior, shapely.LineString([(lon, 5), (lon, 10)]))
        (lat,) = shapely.get_coordinates(south)[:, 1]
        _, _, d = GEOD.inv(lon, 10, lon, lat)
        assert d == pytest.approx(10000.0, rel=1e-3)


def test_densify_across_the_antimeridian_is_split_at_180():
    line = shapely.LineString([(179.0, -16.0), (181.0, -16.5)])
    result = run("densify", {"features": fc([line]), "max_segment_length": meters(10, "kilometer")})
    out = geoms(result)[0]
    assert out.geom_type == "MultiLineString"
    assert out.bounds[0] >= -180 and out.bounds[2] <= 180


def test_feature_split_at_the_antimeridian_is_buffered_as_one_place():
    # RFC 7946 style: one island stored as two parts on either side of 180
    island = shapely.MultiPolygon(
        [shapely.box(179.5, -17, 180, -16), shapely.box(-180, -17, -179.5, -16)]
    )
    grown = geoms(run("buffer", {"features": fc([island]), "distance": meters(5, "kilometer")}))[0]
    shrunk = geoms(run("buffer", {"features": fc([island]), "distance": meters(-5, "kilometer")}))[
        0
    ]
    for polygon in (grown, shrunk):
        assert polygon.is_valid and polygon.geom_type == "MultiPolygon"
        assert -180 <= polygon.bounds[0] and polygon.bounds[2] <= 180
    # shrinking works on the island as a whole: no gap is cut along the antimeridian
    assert shapely.get_coordinates(shrunk)[:, 0].max() == pytest.approx(180.0)
    row = shapely.intersection(shrunk.boundary, shapely.LineString([(-180, -16.5), (-179, -16.5)]))
    _, _, inset = GEOD.inv(-179.5, -16.5, shapely.get_coordinates(row)[:, 0].max(), -16.5)
    assert inset == pytest.approx(5000.0, rel=1e-3)


def test_voronoi_of_points_straddling_the_antimeridian():
    points = [shapely.Point(179.9, 0), shapely.Point(-179.9, 0.1), shapely.Point(179.95, 0.3)]
    cells = geoms(run("voronoi", {"features": fc(points)}))
    for cell, point in zip(cells, points, strict=True):
        assert cell.is_valid and cell.contains(point)
        assert -180 <= cell.bounds[0] and cell.bounds[2] <= 180
