"""Voronoi cells and Delaunay triangles."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from executors.base import InvalidInput
from executors.inprocess.operations.triangulation import snap_sites
from tests.executors.inprocess.support import GEOD, fc, geoms, props, run

CORNERS = [shapely.Point(0, 0), shapely.Point(2, 0), shapely.Point(0, 2), shapely.Point(2, 2)]


def test_voronoi_of_four_points_has_four_equal_cells_in_order():
    result = run(
        "voronoi",
        {"features": fc(CORNERS, srid=3857), "extent": {"bbox": [-1, -1, 3, 3], "srid": 3857}},
    )
    cells = geoms(result)
    assert [p["i"] for p in props(result)] == [0, 1, 2, 3]
    assert [c.area for c in cells] == pytest.approx([4.0, 4.0, 4.0, 4.0])
    for cell, point in zip(cells, CORNERS, strict=True):
        assert cell.contains(point)


def test_voronoi_default_extent_is_the_input_box_grown_by_ten_percent():
    points = [shapely.Point(0, 0), shapely.Point(10, 0)]
    cells = geoms(run("voronoi", {"features": fc(points, srid=3857)}))
    assert shapely.union_all(cells).bounds == pytest.approx((-1, -1, 11, 1))
    assert cells[0].area == pytest.approx(6 * 2) and cells[1].area == pytest.approx(6 * 2)


def test_voronoi_coincident_points_share_a_cell():
    points = [shapely.Point(0, 0), shapely.Point(0, 0), shapely.Point(4, 0)]
    cells = geoms(
        run(
            "voronoi",
            {"features": fc(points, srid=3857), "extent": {"bbox": [-2, -2, 6, 2], "srid": 3857}},
        )
    )
    assert cells[0].equals(cells[1]) and cells[0].area == pytest.approx(16.0)


def test_voronoi_lonlat_boundary_is_equidistant_on_the_ground():
    a, b = (10.0, 60.0), (10.2, 60.1)
    cells = geoms(run("voronoi", {"features": fc([shapely.Point(a), shapely.Point(b)])}))
    shared = cells[0].intersection(cells[1])
    for lon, lat in shapely.get_coordinates(shared):
        _, _, da = GEOD.inv(a[0], a[1], lon, lat)
        _, _, db = GEOD.inv(b[0], b[1], lon, lat)
        assert da == pytest.approx(db, rel=1e-3)


def test_delaunay_of_a_square_gives_two_triangles():
    triangles = geoms(run("delaunay", {"features": fc(CORNERS, srid=3857)}))
    assert len(triangles) == 2 and sum(t.area for t in triangles) == pytest.approx(4.0)
    edges = geoms(run("delaunay", {"features": fc(CORNERS, srid=3857), "only_edges": True}))
    assert len(edges) == 5 and all(e.geom_type == "LineString" for e in edges)


def test_delaunay_uses_vertices_of_lines_and_polygons():
    triangles = geoms(
        run(
            "delaunay",
            {"features": fc([shapely.box(0, 0, 1, 1), shapely.LineString([(3, 0), (3, 1)])])},
        )
    )
    hull = shapely.union_all(triangles)
    assert hull.bounds == pytest.approx((0, 0, 3, 1), abs=1e-9)
    assert np.isclose(hull.area, 3.0, rtol=1e-3)


# Two records of one address one ULP (5.5e-12 m) apart, as records 211 and 212 of Snow's
# SohoPeople.shp, and three more points around them (EPSG:3857).
ONE_ULP_APART = [
    (-15103.483471566631, 6712538.59351482),
    (-15103.483471566626, 6712538.59351482),
    (-15000.0, 6712600.0),
    (-15200.0, 6712600.0),
    (-15100.0, 6712400.0),
]


def test_voronoi_points_one_ulp_apart_share_one_cell():
    """Both records get the one cell of their address (not two half cells split along an
    arbitrary line): the cell the address has without the duplicate record."""
    pts = list(shapely.points(ONE_ULP_APART))
    result = run("voronoi", {"features": fc(pts, srid=3857)})
    cells = geoms(result)
    assert [p["i"] for p in props(result)] == [0, 1, 2, 3, 4]
    assert cells[0].equals(cells[1])
    assert cells[0].covers(pts[0]) and cells[0].covers(pts[1])
    alone = geoms(run("voronoi", {"features": fc([pts[0], *pts[2:]], srid=3857)}))
    assert cells[0].equals(alone[0])
    assert all(cells[i].equals(alone[i - 1]) for i in (2, 3, 4))


def test_delaunay_points_one_ulp_apart_are_one_vertex():
    """No zero-area sliver triangles: the three triangles around the address."""
    pts = list(shapely.points(ONE_ULP_APART))
    triangles = geoms(run("delaunay", {"features": fc(pts, srid=3857)}))
    assert len(triangles) == 3
    assert min(t.area for t in triangles) > 1000.0
    hull = shapely.MultiPoint(ONE_ULP_APART).convex_hull
    assert sum(t.area for t in triangles) == pytest.approx(hull.area, rel=1e-12)
    corners = {tuple(c) for t in triangles for c in t.exterior.coords}
    assert corners == {ONE_ULP_APART[0], *ONE_ULP_APART[2:]}  # the first record's position
    edges = geoms(run("delaunay", {"features": fc(pts, srid=3857), "only_edges": True}))
    assert len(edges) == 6 and min(e.length for e in edges) > 10.0


def test_tolerance_snaps_chains_of_points_to_the_first():
    """Points within ``tolerance`` of each other, transitively, are one site at the first:
    (0, 0), (0.8, 0), (1.6, 0) with a 1 m tolerance share the cell of a point at (0, 0)."""
    pts = [
        shapely.Point(0, 0),
        shapely.Point(10, 0),
        shapely.Point(0.8, 0),
        shapely.Point(5, 8),
        shapely.Point(1.6, 0),
    ]
    extent = {"bbox": [-5, -5, 15, 15], "srid": 32632}
    one_metre = {"value": 1, "unit": "meter"}
    inputs = {"features": fc(pts, srid=32632), "extent": extent, "tolerance": one_metre}
    cells = geoms(run("voronoi", inputs))
    assert cells[0].equals(cells[2]) and cells[0].equals(cells[4])
    first = geoms(
        run("voronoi", {"features": fc([pts[0], pts[1], pts[3]], srid=32632), "extent": extent})
    )
    assert cells[0].equals(first[0]) and cells[1].equals(first[1]) and cells[3].equals(first[2])
    default = geoms(run("voronoi", {"features": fc(pts, srid=32632), "extent": extent}))
    assert len({c.wkb for c in default}) == 5  # 0.8 m is far above 1e-9 of the diagonal
    triangles = geoms(run("delaunay", {"features": fc(pts, srid=32632), "tolerance": one_metre}))
    assert {tuple(c) for t in triangles for c in t.exterior.coords} == {(0, 0), (10, 0), (5, 8)}


def test_tolerance_is_a_length_in_the_working_plane():
    # EPSG:2227 is in US survey feet: 1 m is 3.28 ft, so points 3 ft apart are one site.
    pts = [
        shapely.Point(6_000_000, 2_100_000),
        shapely.Point(6_000_003, 2_100_000),
        shapely.Point(6_000_100, 2_100_000),
    ]
    metre = {"value": 1, "unit": "meter"}
    cells = geoms(run("voronoi", {"features": fc(pts, srid=2227), "tolerance": metre}))
    assert cells[0].equals(cells[1]) and not cells[0].equals(cells[2])
    cells = geoms(
        run("voronoi", {"features": fc(pts, srid=2227), "tolerance": {"value": 2, "unit": "foot"}})
    )
    assert not cells[0].equals(cells[1])
    # Lon/lat data: metres in the local frame (~0.56 m between these two at 60N).
    pts = [shapely.Point(10.0, 60.0), shapely.Point(10.00001, 60.0), shapely.Point(10.01, 60.0)]
    cells = geoms(run("voronoi", {"features": fc(pts), "tolerance": metre}))
    assert cells[0].equals(cells[1])
    cells = geoms(
        run("voronoi", {"features": fc(pts), "tolerance": {"value": 0.5, "unit": "meter"}})
    )
    assert not cells[0].equals(cells[1])


@pytest.mark.parametrize("handler", ["voronoi", "delaunay"])
@pytest.mark.parametrize(
    ("tolerance", "message"),
    [
        ({"value": 1e-6, "unit": "degree"}, "not degrees"),
        ({"value": -1, "unit": "meter"}, "negative"),
    ],
)
def test_tolerance_must_be_a_non_negative_length(handler, tolerance, message):
    pts = [shapely.Point(0, 0), shapely.Point(1, 0), shapely.Point(0, 1)]
    with pytest.raises(InvalidInput, match=message):
        run(handler, {"features": fc(pts), "tolerance": tolerance})


def test_delaunay_needs_three_sites_after_snapping():
    pts = [shapely.Point(0, 0), shapely.Point(1, 0), shapely.Point(1.0000001, 0)]
    with pytest.raises(InvalidInput, match="3 distinct vertices"):
        run("delaunay", {"features": fc(pts, srid=32632), "tolerance": {"value": 1e-3}})


def test_snap_sites_groups_transitively_and_numbers_by_first_point():
    xy = np.array([[5.0, 5.0], [0.0, 0.0], [0.4, 0.0], [5.3, 5.0], [0.8, 0.0], [9.0, 9.0]])
    site_of, first = snap_sites(xy, 0.5)
    assert site_of.tolist() == [0, 1, 1, 0, 1, 2] and first.tolist() == [0, 1, 5]
    site_of, first = snap_sites(xy)  # 1e-9 of the diagonal: nothing merges
    assert site_of.tolist() == [0, 1, 2, 3, 4, 5] and first.tolist() == [0, 1, 2, 3, 4, 5]
    same = np.array([[1.0, 2.0]] * 3)
    assert [a.tolist() for a in snap_sites(same)] == [[0, 0, 0], [0]]
    ulp = np.array([[1e7, 0.0], [np.nextafter(1e7, 2e7), 0.0], [1e7 + 1, 0.0], [1e7, 1.0]])
    assert snap_sites(ulp)[0].tolist() == [0, 0, 1, 2]
    assert [len(a) for a in snap_sites(np.empty((0, 2)))] == [0, 0]
