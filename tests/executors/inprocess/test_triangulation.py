"""Voronoi cells and Delaunay triangles."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

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
