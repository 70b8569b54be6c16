"""Simplify, generalize and densify with tolerances in linear units."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from tests.executors.inprocess.support import GEOD, fc, geoms, meters, run


def test_simplify_removes_vertices_within_tolerance_in_metres():
    # a 5 m bump on a 1 km line in UTM: gone with 10 m, kept with 1 m
    line = shapely.LineString([(0, 0), (500, 5), (1000, 0)])
    assert (
        len(
            geoms(run("simplify", {"features": fc([line], srid=32632), "tolerance": meters(10)}))[
                0
            ].coords
        )
        == 2
    )
    assert (
        len(
            geoms(run("simplify", {"features": fc([line], srid=32632), "tolerance": meters(1)}))[
                0
            ].coords
        )
        == 3
    )


def test_simplify_lonlat_tolerance_is_on_the_ground():
    # a bump of ~5.6 m (0.00005 deg of latitude) in the middle of a line at 60N
    line = shapely.LineString([(10, 60), (10.01, 60.00005), (10.02, 60)])
    kept = geoms(run("simplify", {"features": fc([line]), "tolerance": meters(3)}))[0]
    removed = geoms(run("simplify", {"features": fc([line]), "tolerance": meters(8)}))[0]
    assert len(kept.coords) == 3 and len(removed.coords) == 2


def test_simplify_without_topology_may_collapse_and_generalize_keeps_valid():
    thin = shapely.Polygon([(0, 0), (1000, 0), (1000, 3), (0, 3)])
    collapsed = geoms(
        run(
            "simplify",
            {
                "features": fc([thin], srid=32632),
                "tolerance": meters(10),
                "preserve_topology": False,
            },
        )
    )[0]
    assert collapsed is None or collapsed.is_empty or collapsed.area < thin.area
    kept = geoms(run("generalize", {"features": fc([thin], srid=32632), "tolerance": meters(10)}))[
        0
    ]
    assert kept.is_valid and not kept.is_empty and kept.geom_type == "Polygon"


def test_generalize_is_douglas_peucker_on_a_zigzag():
    zigzag = shapely.LineString([(x * 10, (x % 2) * 2) for x in range(11)])
    out = geoms(run("generalize", {"features": fc([zigzag], srid=32632), "tolerance": meters(5)}))[
        0
    ]
    assert out.hausdorff_distance(zigzag) <= 5 and len(out.coords) < len(zigzag.coords)


def test_densify_projected_line_segment_lengths():
    line = shapely.LineString([(0, 0), (1000, 0)])
    out = geoms(
        run("densify", {"features": fc([line], srid=32632), "max_segment_length": meters(300)})
    )[0]
    xs = [c[0] for c in out.coords]
    assert len(xs) == 5 and np.allclose(np.diff(xs), 250.0)


def test_densify_lonlat_follows_the_geodesic():
    line = shapely.LineString([(-60, 50), (0, 50)])
    out = geoms(
        run("densify", {"features": fc([line]), "max_segment_length": meters(100, "kilometer")})
    )[0]
    coords = np.array(out.coords)
    _, _, steps = GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
    assert steps.max() <= 100000.0 + 1e-6 and len(coords) > 40
    # inserted points lie on the great circle, poleward of the 50N parallel
    assert coords[len(coords) // 2, 1] > 53.5
    lons, lats = zip(*GEOD.npts(-60, 50, 0, 50, 3), strict=True)
    assert out.distance(shapely.Point(lons[1], lats[1])) < 0.01


def test_densify_polygon_keeps_rings_closed():
    square = shapely.box(0, 0, 1, 1)
    out = geoms(
        run("densify", {"features": fc([square]), "max_segment_length": meters(20, "kilometer")})
    )[0]
    assert out.is_valid and len(out.exterior.coords) > 20
    assert out.area == pytest.approx(1.0, rel=1e-3)
