"""Constructions: offset curve, hulls, envelopes, centroids, label points, bounding shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from tests.executors.inprocess.support import GEOD, fc, geoms, ground_distances, meters, run

L_SHAPE = shapely.Polygon([(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4)])


def test_convex_hull_per_feature_and_dissolved():
    result = run("convex_hull", {"features": fc([L_SHAPE], srid=3857)})
    assert geoms(result)[0].area == pytest.approx(16 - 4.5)
    points = [shapely.Point(0, 0), shapely.Point(2, 0), shapely.Point(0, 2)]
    hull = geoms(run("convex_hull", {"features": fc(points, srid=3857), "dissolve": True}))[0]
    assert hull.area == pytest.approx(2.0)


def test_envelope():
    result = run("envelope", {"features": fc([shapely.LineString([(1, 2), (3, 7)])], srid=3857)})
    assert geoms(result)[0].equals(shapely.box(1, 2, 3, 7))


def test_centroid_of_projected_polygon_and_lonlat_square():
    result = run("centroid", {"features": fc([shapely.box(0, 0, 2, 4)], srid=3857)})
    assert geoms(result)[0].equals(shapely.Point(1, 2))
    # lon/lat data: computed in a local metric frame, within metres of the symmetric centre
    cell = geoms(run("centroid", {"features": fc([shapely.box(10, 0, 11, 1)])}))[0]
    assert cell.x == pytest.approx(10.5, abs=5e-5) and cell.y == pytest.approx(0.5, abs=1e-3)


def test_label_point_lies_inside_a_concave_polygon():
    point = geoms(run("label_points", {"features": fc([L_SHAPE], srid=3857)}))[0]
    assert L_SHAPE.contains(point)


def test_minimum_bounding_circle_projected_and_round_on_the_ground():
    circle = geoms(
        run("minimum_bounding_circle", {"features": fc([shapely.box(0, 0, 6, 8)], srid=3857)})
    )[0]
    radius = 5.0
    assert circle.area == pytest.approx(math.pi * radius**2, rel=0.01)
    assert circle.centroid.equals_exact(shapely.Point(3, 4), 1e-6)
    # two points 2 km apart at 60N: the circle's vertices are 1 km from the midpoint
    a, b = (10.0, 60.0), (10.0, 60.018)
    circle = geoms(run("minimum_bounding_circle", {"features": fc([shapely.MultiPoint([a, b])])}))[
        0
    ]
    lon, lat, _ = GEOD.fwd(a[0], a[1], 0, GEOD.inv(*a, *b)[2] / 2)
    dist = ground_distances(lon, lat, circle.exterior)
    assert np.allclose(dist, dist.mean(), rtol=1e-3)


def test_minimum_rotated_rectangle_of_a_rotated_square():
    diamond = shapely.Polygon([(0, 1), (1, 0), (2, 1), (1, 2)])
    rect = geoms(run("minimum_rotated_rectangle", {"features": fc([diamond], srid=3857)}))[0]
    assert rect.area == pytest.approx(2.0)
    assert rect.normalize().equals_exact(diamond.normalize(), 1e-9)


def test_offset_curve_left_and_right_in_metres():
    line = shapely.LineString([(0, 0), (100, 0)])
    left = geoms(run("offset_curve", {"features": fc([line], srid=32632), "distance": meters(10)}))[
        0
    ]
    right = geoms(
        run("offset_curve", {"features": fc([line], srid=32632), "distance": meters(-10)})
    )[0]
    assert left.equals_exact(shapely.LineString([(0, 10), (100, 10)]), 1e-9)
    assert {c[1] for c in right.coords} == {-10.0}
    lonlat = geoms(
        run(
            "offset_curve",
            {"features": fc([shapely.LineString([(5, 45), (5.01, 45)])]), "distance": meters(50)},
        )
    )[0]
    _, _, d = GEOD.inv(5.005, 45, 5.005, lonlat.coords[0][1])
    assert d == pytest.approx(50.0, rel=1e-3)
    assert lonlat.coords[0][1] > 45
