"""honua_gp.delaunay through a cursor and through the executor, against scipy's Delaunay."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer
from scipy.spatial import Delaunay

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.operations.triangulation import delaunay as inprocess_delaunay
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import fc, geom, shape, wkb

SQL = "SELECT ordinal, ST_AsBinary(geom) FROM honua_gp.delaunay(%s::bytea[], %s{extra})"


def delaunay(as_role, geoms, srid, extra="", *params):
    rows = as_role(SQL.format(extra=extra), [wkb(geoms), srid, *params])
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    return [geom(r[1]) for r in rows]


def triples(triangles) -> set[frozenset[tuple[float, float]]]:
    """Each triangle as the set of its three corners."""
    out = set()
    for t in triangles:
        ring = shapely.get_coordinates(t.exterior)[:3]
        out.add(frozenset(map(tuple, ring.tolist())))
    return out


def scipy_triples(xy: np.ndarray) -> set[frozenset[tuple[float, float]]]:
    return {frozenset(map(tuple, xy[s].tolist())) for s in Delaunay(xy).simplices}


def scipy_edges(xy: np.ndarray) -> set[frozenset[tuple[float, float]]]:
    edges = set()
    for s in Delaunay(xy).simplices:
        for a, b in ((0, 1), (1, 2), (0, 2)):
            edges.add(frozenset([tuple(xy[s[a]].tolist()), tuple(xy[s[b]].tolist())]))
    return edges


def test_triangles_of_random_points_are_scipys(as_role):
    xy = np.random.default_rng(3).uniform(0, 10_000, (300, 2))
    got = delaunay(as_role, list(shapely.points(xy)), 32632)
    assert all(t.geom_type == "Polygon" for t in got)
    assert triples(got) == scipy_triples(xy)


def test_vertices_of_lines_and_polygons_are_sites_and_edges_only(as_role):
    rng = np.random.default_rng(8)
    xy = rng.uniform(0, 1000, (40, 2))
    line = shapely.LineString(xy[:10])
    poly = shapely.Polygon(shapely.convex_hull(shapely.multipoints(xy[10:25])).exterior)
    hull_xy = shapely.get_coordinates(poly)[:-1]  # the closing vertex is a duplicate site
    points = list(shapely.points(xy[25:]))
    sites = np.vstack([xy[:10], hull_xy, xy[25:]])
    geoms = [line, None, poly, *points, shapely.Point()]
    edges = delaunay(as_role, geoms, 3857, ", %s, %s", 0.0, True)
    assert all(e.geom_type == "LineString" for e in edges)
    got = {frozenset(map(tuple, shapely.get_coordinates(e).tolist())) for e in edges}
    assert got == scipy_edges(sites)


def test_near_duplicates_and_the_tolerance_snap_to_the_first_vertex(as_role):
    square = [(0, 0), (100, 0), (100, 100), (0, 100), (50, 40)]
    noisy = [(50 + 1e-9, 40 - 1e-9), (0.3, 0.2)]
    pts = list(shapely.points(square + noisy))
    # float noise: one site at (50, 40); (0.3, 0.2) stays a site
    got = delaunay(as_role, pts, 3857)
    corners = set().union(*triples(got))
    assert (50 + 1e-9, 40 - 1e-9) not in corners and (50.0, 40.0) in corners
    assert (0.3, 0.2) in corners
    # a tolerance of 0.5 m merges (0.3, 0.2) into (0, 0), which comes first
    snapped = delaunay(as_role, pts, 3857, ", %s", 0.5)
    assert triples(snapped) == scipy_triples(np.array(square, dtype=float))


def test_lon_lat_is_triangulated_in_a_transverse_mercator_plane(as_role):
    rng = np.random.default_rng(21)
    lonlat = np.column_stack([rng.uniform(9.0, 11.0, 200), rng.uniform(59.0, 61.0, 200)])
    got = delaunay(as_role, list(shapely.points(lonlat)), 4326)
    # scipy in the same frame, projected by pyproj: TM centred on the longitude span
    lon_0 = round((lonlat[:, 0].min() + lonlat[:, 0].max()) / 2, 6)
    tm = Transformer.from_crs(
        4326, f"+proj=tmerc +lat_0=0 +lon_0={lon_0} +k_0=1 +datum=WGS84 +units=m", always_xy=True
    )
    x, y = tm.transform(lonlat[:, 0], lonlat[:, 1])
    want = {
        frozenset(map(tuple, lonlat[s].round(9).tolist()))
        for s in Delaunay(np.column_stack([x, y])).simplices
    }
    got_rounded = {
        frozenset(map(tuple, shapely.get_coordinates(t.exterior)[:3].round(9).tolist()))
        for t in got
    }
    assert got_rounded == want
    # in lon/lat degrees (a different metric at 60N) the triangulation differs
    assert got_rounded != scipy_triples(lonlat.round(9))


def test_edges_across_the_antimeridian_are_split_there(as_role):
    pts = list(shapely.points([(179.9, 0), (-179.9, 0.5), (179.95, 1), (-179.95, -1)]))
    edges = delaunay(as_role, pts, 4326, ", %s, %s", 0.0, True)
    assert len(edges) == 5
    for e in edges:
        minx, _, maxx, _ = e.bounds
        assert -180 <= minx and maxx <= 180
        assert maxx - minx < 1 or e.geom_type == "MultiLineString"
    assert sum(e.geom_type == "MultiLineString" for e in edges) == 3
    assert max(shapely.length(e) for e in edges) < 2.5  # no edge goes the long way round


@pytest.mark.parametrize(
    ("geoms", "extra", "params", "message"),
    [
        ([shapely.Point(0, 0), shapely.Point(1, 1)], "", [], "at least 3"),
        ([shapely.Point(0, 0), shapely.Point(1e-12, 0), shapely.Point(1, 1)], "", [], "at least 3"),
        ([None, shapely.Point()], "", [], "at least 3"),
        ([shapely.Point(0, 0)] * 3, ", %s", [-1.0], "tolerance"),
        ([shapely.Point(0, 0)] * 3, ", %s", [float("nan")], "tolerance"),
    ],
)
def test_invalid_input_raises_22023(as_role, geoms, extra, params, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        delaunay(as_role, geoms, 3857, extra, *params)


def test_collinear_points_give_no_triangles(as_role):
    assert delaunay(as_role, list(shapely.points([(0, 0), (1, 1), (2, 2)])), 3857) == []


# -- through the executor, and the in-process tier's answers ------------------------------


def _ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="delaunay", handler="delaunay", **kw)


def _shapes(result: dict) -> list:
    return [shape(f) for f in result["features"]]


@pytest.mark.django_db
@pytest.mark.parametrize("only_edges", [False, True])
@pytest.mark.parametrize(("srid", "origin", "scale"), [(3857, (1e6, 6e6), 100.0), (4326, (10.0, 60.0), 1e-3)])
def test_executor_matches_the_inprocess_tier(srid, origin, scale, only_edges):
    xy = np.array(origin) + np.random.default_rng(5).uniform(0, 100, (250, 2)) * scale
    inputs = {"features": fc(list(shapely.points(xy)), srid=srid), "only_edges": only_edges}
    ours = PostGISExecutor().execute("delaunay", inputs, _ctx())["result"]
    theirs = inprocess_delaunay(inputs, _ctx())
    assert ours["srid"] == srid and len(ours["features"]) == len(theirs["features"])
    assert all(f["properties"] == {} for f in ours["features"])

    def key(g):
        return frozenset(map(tuple, shapely.get_coordinates(g).round(7 if srid == 4326 else 3).tolist()))

    assert {key(g) for g in _shapes(ours)} == {key(g) for g in _shapes(theirs)}


@pytest.mark.django_db
def test_executor_writes_the_output_srid_and_reports_bad_input():
    pts = list(shapely.points([(0, 0), (1000, 0), (0, 1000)]))
    out = PostGISExecutor().execute(
        "delaunay", {"features": fc(pts, srid=3857)}, _ctx(out_srid=4326)
    )["result"]
    assert out["srid"] == 4326 and len(out["features"]) == 1
    corners = shapely.get_coordinates(shape(out["features"][0]))
    assert corners[:, 0].max() == pytest.approx(1000 / 111319.49079327357, rel=1e-9)
    with pytest.raises(InvalidInput, match="at least 3"):
        PostGISExecutor().execute("delaunay", {"features": fc(pts[:2], srid=3857)}, _ctx())
    with pytest.raises(InvalidInput, match="tolerance"):
        PostGISExecutor().execute(
            "delaunay",
            {"features": fc(pts, srid=3857), "tolerance": {"value": 1, "unit": "degree"}},
            _ctx(),
        )


@pytest.mark.django_db
def test_both_tiers_split_the_same_edges_at_the_antimeridian():
    rng = np.random.default_rng(17)
    lon = rng.uniform(179.5, 180.5, 40)
    lonlat = np.column_stack([np.where(lon > 180, lon - 360, lon), rng.uniform(-0.5, 0.5, 40)])
    inputs = {"features": fc(list(shapely.points(lonlat))), "only_edges": True}
    ours = _shapes(PostGISExecutor().execute("delaunay", inputs, _ctx())["result"])
    theirs = _shapes(inprocess_delaunay(inputs, _ctx()))

    def key(g):
        return frozenset(map(tuple, shapely.get_coordinates(g).round(7).tolist()))

    assert {key(g) for g in ours} == {key(g) for g in theirs}
    split = [g for g in ours if g.geom_type == "MultiLineString"]
    assert split and all(-180 <= g.bounds[0] and g.bounds[2] <= 180 for g in ours)
    assert max(shapely.length(g) for g in ours) < 1.5
