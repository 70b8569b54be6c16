"""Voronoi cells and Delaunay triangles of real point layers vs their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod

from tests.executors.realdata.datasets import Layer, collection, result_geometries, run

GEOD = Geod(ellps="WGS84")


def _grown_bbox(points: np.ndarray) -> shapely.Geometry:
    """The documented default clip: the points' bounding box grown by 10 % on each side."""
    minx, miny, maxx, maxy = shapely.total_bounds(points)
    pad = 0.1 * max(maxx - minx, maxy - miny)
    return shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)


def _sample(area: shapely.Geometry, n: int = 3000) -> np.ndarray:
    """Deterministic random points in ``area``'s bounding box, kept if inside it."""
    minx, miny, maxx, maxy = area.bounds
    rng = np.random.default_rng(1854)
    pts = shapely.points(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n))
    return pts[shapely.contains(area, pts)]


def _owner(cells: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Index of the cell covering each point (-1 if none; the first if on a shared edge)."""
    hit_pt, hit_cell = shapely.STRtree(cells).query(pts, predicate="covered_by")
    owner = np.full(len(pts), -1)
    owner[hit_pt[::-1]] = hit_cell[::-1]
    return owner


def _check_tiling(cells: np.ndarray, extent: shapely.Geometry) -> None:
    assert shapely.is_valid(cells).all()
    left, right = shapely.STRtree(cells).query(cells, predicate="intersects")
    pair = left < right
    shared = shapely.area(shapely.intersection(cells[left[pair]], cells[right[pair]])).sum()
    assert shared <= 1e-9 * extent.area
    assert shapely.area(cells).sum() == pytest.approx(extent.area, rel=1e-9)
    assert shapely.union_all(cells).symmetric_difference(extent).area <= 1e-9 * extent.area


def test_voronoi_of_the_pumps(pumps: Layer):
    """One cell per pump, carrying its properties; each pump inside its own cell; the cells
    tile the default extent (no overlap, no gap); and every sample point of the extent lies
    in the cell of its nearest pump by brute force."""
    result = run("voronoi", {"features": pumps.collection})
    assert result["srid"] == 3857
    cells = result_geometries(result)
    assert len(cells) == len(pumps) == 13
    assert [f["id"] for f in result["features"]] == pumps.ids
    assert set(shapely.get_type_id(cells).tolist()) == {3}
    assert shapely.contains(cells, pumps.given).all()
    extent = _grown_bbox(pumps.given)
    _check_tiling(cells, extent)
    sample = _sample(extent)
    xy = shapely.get_coordinates(sample)
    seeds = shapely.get_coordinates(pumps.geometries)
    nearest = np.hypot(
        xy[:, 0, None] - seeds[None, :, 0], xy[:, 1, None] - seeds[None, :, 1]
    ).argmin(axis=1)
    np.testing.assert_array_equal(_owner(cells, sample), nearest)


def test_voronoi_of_the_pumps_in_lon_lat_follows_ground_distance(pumps: Layer):
    """The pumps in EPSG:4326 (pyproj-transformed): each pump inside its own cell, and each
    sample point clearly nearer (by > 0.1 m) to one pump by Geod.inv lies in that pump's cell."""
    lonlat = pumps.lonlat()
    result = run("voronoi", {"features": collection(lonlat, 4326, pumps.ids)})
    assert result["srid"] == 4326
    cells = result_geometries(result)
    assert len(cells) == 13
    assert shapely.contains(cells, lonlat).all()
    sample = _sample(shapely.union_all(cells).buffer(-1e-5))
    xy = shapely.get_coordinates(sample)
    seeds = shapely.get_coordinates(lonlat)
    n, m = len(xy), len(seeds)
    _, _, d = GEOD.inv(
        np.repeat(xy[:, 0], m),
        np.repeat(xy[:, 1], m),
        np.tile(seeds[:, 0], n),
        np.tile(seeds[:, 1], n),
    )
    d = np.asarray(d).reshape(n, m)
    two = np.sort(d, axis=1)[:, :2]
    clear = two[:, 1] - two[:, 0] > 0.1
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(_owner(cells, sample)[clear], d.argmin(axis=1)[clear])


def test_voronoi_of_the_deaths_covers_every_address(deaths: Layer):
    """324 death records at 322 distinct coordinates: every record lies in its cell, and the
    distinct cells tile the extent."""
    result = run("voronoi", {"features": deaths.collection})
    cells = result_geometries(result)
    assert len(cells) == len(deaths)
    assert shapely.covers(cells, deaths.given).all()
    distinct = np.asarray(list({c.wkb: c for c in cells}.values()), dtype=object)
    _check_tiling(distinct, _grown_bbox(deaths.given))


def _check_delaunay(triangles: np.ndarray, points: np.ndarray) -> None:
    """The definition: triangles over the input points, tiling their convex hull, and no point
    strictly inside the circumcircle of any triangle (tolerance 1e-9 of the radius) but the
    degenerate ones of area under 1e-6 m², whose circumcircles are meaningless (see
    test_delaunay_of_the_deaths_has_no_degenerate_triangles)."""
    assert set(shapely.get_type_id(triangles).tolist()) == {3}
    seeds = np.unique(shapely.get_coordinates(points), axis=0)
    corners = shapely.get_coordinates(triangles).reshape(len(triangles), 4, 2)[:, :3]
    assert {tuple(c) for c in corners.reshape(-1, 2)} <= {tuple(c) for c in seeds}
    hull = shapely.MultiPoint(seeds).convex_hull
    assert shapely.area(triangles).sum() == pytest.approx(hull.area, rel=1e-9)
    assert shapely.union_all(triangles).symmetric_difference(hull).area <= 1e-9 * hull.area
    proper = shapely.area(triangles) > 1e-6
    a, b, c = corners[proper, 0], corners[proper, 1], corners[proper, 2]
    centre = _circumcentres(a, b, c)
    radius = np.hypot(*(a - centre).T)
    dist = np.hypot(seeds[None, :, 0] - centre[:, None, 0], seeds[None, :, 1] - centre[:, None, 1])
    assert (dist >= radius[:, None] * (1 - 1e-9)).all()


def _circumcentres(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Circumcentres of triangles (rows), computed relative to ``a`` for precision."""
    b, c = b - a, c - a
    d = 2.0 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    bb, cc = (b**2).sum(axis=1), (c**2).sum(axis=1)
    ux = (c[:, 1] * bb - b[:, 1] * cc) / d
    uy = (b[:, 0] * cc - c[:, 0] * bb) / d
    return a + np.column_stack([ux, uy])


def test_delaunay_of_the_pumps(pumps: Layer):
    result = run("delaunay", {"features": pumps.collection})
    triangles = result_geometries(result)
    assert result["srid"] == 3857
    hull_corners = (
        len(shapely.MultiPoint(shapely.get_coordinates(pumps.given)).convex_hull.exterior.coords)
        - 1
    )
    assert len(triangles) == 2 * 13 - 2 - hull_corners  # Euler, no collinear hull points
    _check_delaunay(triangles, pumps.given)


# Records 211-214 of SohoPeople.shp are one address: 212-214 are bit-identical and 211 lies
# 5.5e-12 m (about one ULP of its easting) east of them, in the file itself.
ONE_ADDRESS = [211, 212, 213, 214]


def test_delaunay_of_the_deaths(deaths: Layer):
    result = run("delaunay", {"features": deaths.collection})
    _check_delaunay(result_geometries(result), deaths.given)


def _near_duplicates(points: np.ndarray, tolerance: float) -> set[int]:
    xy = shapely.get_coordinates(points)
    close = np.hypot(xy[:, 0, None] - xy[None, :, 0], xy[:, 1, None] - xy[None, :, 1]) <= tolerance
    return {int(i) for i in np.flatnonzero(close.sum(axis=1) > 1)}


def test_one_address_has_records_one_ulp_apart(deaths: Layer):
    """The premise of the two snapping tests below, checked on the file's WKB."""
    assert _near_duplicates(deaths.geometries, 1e-9) == set(ONE_ADDRESS)
    xs = shapely.get_x(deaths.geometries[ONE_ADDRESS])
    assert len(set(xs[1:].tolist())) == 1 and 0 < abs(xs[0] - xs[1]) < 1e-11


def test_voronoi_gives_the_records_of_one_address_one_cell(deaths: Layer):
    """Records one ULP apart are one site (snapped within 1e-9 of the extent diagonal): they
    share one cell, which contains all four, instead of two arbitrary half cells."""
    cells = result_geometries(run("voronoi", {"features": deaths.collection}))
    first = cells[ONE_ADDRESS[0]]
    assert all(shapely.equals(first, cells[i]) for i in ONE_ADDRESS[1:])
    assert shapely.covers(first, deaths.given[ONE_ADDRESS]).all()


def test_delaunay_of_the_deaths_has_no_degenerate_triangles(deaths: Layer):
    """Vertices one ULP apart are one vertex: no zero-area (~1e-11 m²) triangles, and the
    triangles are those of the 322 distinct addresses (Euler: 2n - 2 - hull corners)."""
    triangles = result_geometries(run("delaunay", {"features": deaths.collection}))
    assert shapely.area(triangles).min() > 1e-6
    addresses = len(np.unique(shapely.get_coordinates(deaths.given), axis=0)) - 1
    hull = shapely.MultiPoint(shapely.get_coordinates(deaths.given)).convex_hull
    assert len(triangles) == 2 * addresses - 2 - (len(hull.exterior.coords) - 1)
