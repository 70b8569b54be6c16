"""Areas, lengths and nearest distances in units, geodesically correct."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from executors.geodesic import geodesic_areas, geodesic_lengths
from tests.executors.inprocess.support import GEOD, fc, meters, props, run


def test_one_degree_cell_at_the_equator_is_12308_square_kilometres():
    result = run("areas", {"features": fc([shapely.box(0, 0, 1, 1)]), "unit": "square_kilometer"})
    assert props(result)[0]["area"] == pytest.approx(12308.78, abs=0.05)


def test_areas_match_karney_geodesic_areas():
    shapes = [
        shapely.box(10, 59, 20, 61),
        shapely.box(-5, 40, 5, 50).difference(shapely.box(-1, 44, 1, 46)),
        shapely.MultiPolygon([shapely.box(170, -20, 180, -10), shapely.box(-180, -20, -170, -10)]),
        shapely.Polygon([(-70, -30), (-60, -35), (-65, -20), (-72, -25)]),
    ]
    got = geodesic_areas(np.array(shapes, dtype=object), 4326)
    for area, shape in zip(got, shapes, strict=True):
        reference = sum(
            abs(GEOD.geometry_area_perimeter(p)[0]) for p in getattr(shape, "geoms", [shape])
        )
        assert area == pytest.approx(reference, rel=1e-4)


def test_polar_cap_area():
    ring = [(lon, -60.0) for lon in range(-180, 181)] + [(180, -90), (-180, -90)]
    (area,) = geodesic_areas(np.array([shapely.Polygon(ring)], dtype=object), 4326)
    # south of 60S is 6.70 % of the ellipsoid's 510,065,622 km2
    assert area / 1e6 == pytest.approx(34.41e6, rel=1e-3)


def test_area_units_and_planar_method_on_projected_data():
    square = shapely.box(500000, 5000000, 501000, 5001000)  # 1 km2 in UTM 32N
    planar = run(
        "areas", {"features": fc([square], srid=32632), "unit": "hectare", "method": "planar"}
    )
    assert props(planar)[0]["area"] == pytest.approx(100.0, rel=1e-12)
    geodesic = run("areas", {"features": fc([square], srid=32632), "unit": "hectare"})
    # UTM scale 0.9996 on the central meridian: ground area is 1/0.9996^2 larger
    assert props(geodesic)[0]["area"] == pytest.approx(100.0 / 0.9996**2, rel=1e-4)
    acres = run("areas", {"features": fc([square], srid=32632), "unit": "acre", "method": "planar"})
    assert props(acres)[0]["area"] == pytest.approx(247.105, rel=1e-5)


def test_area_of_points_and_lines_is_zero_and_null_geometry_is_null():
    result = run(
        "areas", {"features": fc([shapely.Point(0, 0), shapely.LineString([(0, 0), (1, 1)]), None])}
    )
    assert [p["area"] for p in props(result)] == [0.0, 0.0, None]


def test_lengths_are_geodesic_and_in_the_unit():
    line = shapely.LineString([(0, 0), (1, 0)])
    result = run("lengths", {"features": fc([line, shapely.box(0, 0, 1, 1)]), "unit": "kilometer"})
    assert props(result)[0]["length"] == pytest.approx(111.3195, abs=1e-4)
    perimeter = GEOD.geometry_length(shapely.box(0, 0, 1, 1)) / 1000.0
    assert props(result)[1]["length"] == pytest.approx(perimeter, rel=1e-12)
    line60 = shapely.LineString([(10, 60), (11, 60), (11, 61)])
    (length,) = geodesic_lengths(np.array([line60], dtype=object), 4326)
    assert length == pytest.approx(GEOD.geometry_length(line60), rel=1e-12)


def test_lengths_in_degrees_and_planar_feet():
    degrees = run(
        "lengths", {"features": fc([shapely.LineString([(0, 0), (3, 4)])]), "unit": "degree"}
    )
    assert props(degrees)[0]["length"] == pytest.approx(5.0)
    feet = run(
        "lengths",
        {
            "features": fc([shapely.LineString([(0, 0), (0, 1000)])], srid=32633),
            "unit": "foot",
            "method": "planar",
        },
    )
    assert props(feet)[0]["length"] == pytest.approx(1000 / 0.3048)


def test_distance_to_nearest_overlay_feature_is_geodesic():
    points = [shapely.Point(0, 0), shapely.Point(10, 60), None]
    overlay = [
        shapely.Point(0, 1),
        shapely.Point(12, 60),
        shapely.LineString([(10.5, 59), (10.5, 61)]),
    ]
    result = run("distance", {"features": fc(points), "overlay": fc(overlay), "unit": "kilometer"})
    rows = props(result)
    assert rows[0]["near_id"] == 0 and rows[0]["distance"] == pytest.approx(110.574, abs=1e-3)
    _, _, to_line = GEOD.inv(10, 60, 10.5, 60)
    assert rows[1]["near_id"] == 2 and rows[1]["distance"] * 1000 == pytest.approx(
        to_line, rel=1e-4
    )
    assert rows[2]["distance"] is None and rows[2]["near_id"] is None


def test_distance_search_radius_and_planar_projected_distance():
    result = run(
        "distance",
        {
            "features": fc([shapely.Point(0, 0), shapely.Point(100, 0)], srid=3857),
            "overlay": fc([shapely.Point(30, 40)], srid=3857),
            "method": "planar",
            "search_radius": meters(60),
        },
    )
    rows = props(result)
    assert rows[0]["distance"] == pytest.approx(50.0) and rows[0]["near_index"] == 0
    assert rows[1]["distance"] is None


def test_distance_of_projected_data_defaults_to_ground_distance():
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    a = shapely.Point(*to_merc.transform(5, 60))
    b = shapely.Point(*to_merc.transform(5, 60.01))
    result = run("distance", {"features": fc([a], srid=3857), "overlay": fc([b], srid=3857)})
    _, _, expected = GEOD.inv(5, 60, 5, 60.01)
    assert props(result)[0]["distance"] == pytest.approx(expected, rel=1e-6)


def test_nearest_distance_matches_brute_force_over_the_whole_globe():
    rng = np.random.default_rng(11)
    a = np.column_stack([rng.uniform(-180, 180, 300), rng.uniform(-85, 85, 300)])
    b = np.column_stack([rng.uniform(-180, 180, 300), rng.uniform(-85, 85, 300)])
    result = run(
        "distance",
        {"features": fc(list(shapely.points(a))), "overlay": fc(list(shapely.points(b)))},
    )
    for (lon, lat), row in zip(a, props(result), strict=True):
        _, _, d = GEOD.inv(np.full(len(b), lon), np.full(len(b), lat), b[:, 0], b[:, 1])
        assert row["distance"] == pytest.approx(d.min(), rel=1e-6)
        assert row["near_index"] == int(np.argmin(d))
