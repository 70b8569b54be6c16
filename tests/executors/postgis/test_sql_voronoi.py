"""honua_gp.voronoi through a cursor, as the execution role, against known answers."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely

from tests.executors.postgis.support import GEOD, geom, wkb

VORONOI = "SELECT ordinal, ST_AsBinary(geom) FROM honua_gp.voronoi(%s::bytea[], %s{extra})"


def voronoi(as_role, geoms, srid, extra="", *params):
    rows = as_role(VORONOI.format(extra=extra), [wkb(geoms), srid, *params])
    return {o: geom(g) for o, g in rows}


def test_a_grid_gives_equal_square_cells_carrying_their_generator(as_role):
    pts = [shapely.Point(x, y) for y in (0, 10, 20) for x in (0, 10, 20)]
    cells = voronoi(as_role, pts, 3857, ", %s::float8[]", [-5, -5, 25, 25])
    assert sorted(cells) == list(range(1, 10))
    for ordinal, cell in cells.items():
        assert cell.area == pytest.approx(100.0, rel=1e-9)
        assert cell.contains(pts[ordinal - 1])
        assert cell.centroid.distance(pts[ordinal - 1]) < 1e-9


def test_random_points_match_an_independent_diagram(as_role):
    rng = np.random.default_rng(7)
    xy = np.vstack(
        [
            rng.normal(0, 50, (300, 2)),
            rng.normal(5000, 2, (200, 2)),
            rng.uniform(-3000, 8000, (100, 2)),
        ]
    )
    pts = list(shapely.points(xy))
    box = [-4000.0, -4000.0, 9000.0, 9000.0]
    cells = voronoi(as_role, pts, 32633, ", %s::float8[]", box)
    assert len(cells) == len(pts)
    reference = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=shapely.box(*box))
    )
    clip = shapely.box(*box)
    for ordinal, cell in cells.items():
        point = pts[ordinal - 1]
        assert cell.contains(point)
        [expected] = [c for c in reference if c.contains(point)]
        assert cell.area == pytest.approx(expected.intersection(clip).area, rel=1e-6)
    total = shapely.union_all(list(cells.values()))
    assert total.area == pytest.approx(clip.area, rel=1e-9)
    assert sum(c.area for c in cells.values()) == pytest.approx(clip.area, rel=1e-9)  # no overlaps


def test_lon_lat_cells_follow_distances_on_the_ground(as_role):
    # At 60N a degree of longitude is half a degree of latitude on the ground: cells from
    # planar degrees would be wrong; these must hold the nearest-site property geodesically.
    rng = np.random.default_rng(3)
    lon = 10 + rng.uniform(0, 0.4, 40)
    lat = 60 + rng.uniform(0, 0.2, 40)
    pts = list(shapely.points(np.column_stack([lon, lat])))
    cells = voronoi(as_role, pts, 4326, ", NULL, %s", 2000.0)
    assert len(cells) == 40
    samples = rng.uniform(size=(400, 2)) * [0.4, 0.2] + [10, 60]
    for sx, sy in samples:
        sample = shapely.Point(sx, sy)
        owners = [o for o, c in cells.items() if c.contains(sample)]
        if len(owners) != 1:
            continue  # on a shared edge
        _, _, dist = GEOD.inv(np.full(40, sx), np.full(40, sy), lon, lat)
        assert dist[owners[0] - 1] <= dist.min() + 0.5  # metres; cell edges are straight in degrees


def test_margin_and_ratio_clips_are_in_the_working_crs(as_role):
    pts = [shapely.Point(0, 0), shapely.Point(100, 0), shapely.Point(0, 50)]
    cells = voronoi(as_role, pts, 3857, ", NULL, %s", 10.0)
    assert shapely.union_all(list(cells.values())).bounds == pytest.approx((-10, -10, 110, 60))
    cells = voronoi(as_role, pts, 3857, ", NULL, NULL, %s", 0.1)
    assert shapely.union_all(list(cells.values())).bounds == pytest.approx((-10, -10, 110, 60))


def test_coincident_multipart_and_non_point_inputs(as_role):
    square = shapely.box(90, -10, 110, 10)  # its centroid (100, 0) is the seed
    pts = [
        shapely.Point(0, 0),
        shapely.Point(0, 0),
        shapely.MultiPoint([(0, 100), (100, 100)]),
        square,
        None,
    ]
    cells = voronoi(as_role, pts, 3857, ", %s::float8[]", [-50, -50, 150, 150])
    assert sorted(cells) == [1, 2, 3, 4]
    assert cells[1].equals(cells[2])  # coincident points share a cell
    assert cells[3].geom_type == "Polygon" and cells[3].area == pytest.approx(200 * 100)
    assert cells[3].contains(shapely.Point(0, 100)) and cells[3].contains(shapely.Point(100, 100))
    assert cells[4].contains(shapely.Point(100, 0))
    assert sum(c.area for o, c in cells.items() if o != 2) == pytest.approx(200 * 200)


def test_a_single_point_gets_the_whole_clip(as_role):
    cells = voronoi(as_role, [shapely.Point(5, 5)], 3857, ", %s::float8[]", [0, 0, 10, 10])
    assert cells[1].equals(shapely.box(0, 0, 10, 10))


def test_lon_lat_clip_extent_cuts_in_degrees(as_role):
    pts = [shapely.Point(10.1, 60.1), shapely.Point(10.3, 60.1), shapely.Point(10.2, 60.15)]
    cells = voronoi(as_role, pts, 4326, ", %s::float8[]", [10.0, 60.0, 10.4, 60.2])
    assert shapely.union_all(list(cells.values())).bounds == pytest.approx((10.0, 60.0, 10.4, 60.2))
    assert all(c.is_valid and c.contains(p) for c, p in zip(cells.values(), pts, strict=True))


# Two records of one address one ULP (5.5e-12 m) apart, as records 211 and 212 of Snow's
# SohoPeople.shp, and three more seeds around them (EPSG:3857).
ONE_ULP_APART = [
    (-15103.483471566631, 6712538.59351482),
    (-15103.483471566626, 6712538.59351482),
    (-15000.0, 6712600.0),
    (-15200.0, 6712600.0),
    (-15100.0, 6712400.0),
]


def test_seeds_one_ulp_apart_are_one_site_sharing_one_cell(as_role):
    """Version 2 snaps seeds within 1e-9 of the seeds' extent diagonal: the two records share
    one cell (version 1 split it between them along an arbitrary line), which is the cell of
    the address without the duplicate record."""
    pts = list(shapely.points(ONE_ULP_APART))
    cells = voronoi(as_role, pts, 3857, ", NULL, NULL, %s", 0.1)
    assert sorted(cells) == [1, 2, 3, 4, 5]
    assert cells[1].equals(cells[2])
    assert cells[1].covers(pts[0]) and cells[1].covers(pts[1])
    alone = voronoi(as_role, [pts[0], *pts[2:]], 3857, ", NULL, NULL, %s", 0.1)
    assert cells[1].equals(alone[1])
    for ordinal in (3, 4, 5):
        assert cells[ordinal].equals(alone[ordinal - 1])
    minx, miny, maxx, maxy = shapely.MultiPoint(pts).bounds
    pad = 0.1 * max(maxx - minx, maxy - miny)
    extent = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    assert sum(cells[o].area for o in (1, 3, 4, 5)) == pytest.approx(extent.area, rel=1e-12)


def test_tolerance_snaps_chains_of_seeds_to_the_first(as_role):
    """Seeds within p_tolerance of each other, transitively, are one site at the first seed:
    (0, 0), (0.8, 0), (1.6, 0) with tolerance 1 share the cell of a seed at (0, 0)."""
    pts = [
        shapely.Point(0, 0),
        shapely.Point(10, 0),
        shapely.Point(0.8, 0),
        shapely.Point(5, 8),
        shapely.Point(1.6, 0),
    ]
    box = [-5.0, -5.0, 15.0, 15.0]
    cells = voronoi(as_role, pts, 32632, ", %s::float8[], NULL, NULL, %s", box, 1.0)
    assert cells[1].equals(cells[3]) and cells[1].equals(cells[5])
    first = voronoi(as_role, [pts[0], pts[1], pts[3]], 32632, ", %s::float8[]", box)
    assert cells[1].equals(first[1]) and cells[2].equals(first[2]) and cells[4].equals(first[3])
    separate = voronoi(as_role, pts, 32632, ", %s::float8[]", box)  # 0.8 > 1e-9 of the diagonal
    assert len({c.wkb for c in separate.values()}) == 5


@pytest.mark.parametrize(
    ("extra", "params", "message"),
    [
        (", %s::float8[]", [[0.0, 0.0, 0.0, 10.0]], "clip extent"),
        (", %s::float8[]", [[0.0, 0.0, 10.0]], "clip extent"),
        (", %s::float8[]", [[0.0, 0.0, float("inf"), 10.0]], "clip extent"),
        (", NULL, %s", [-1.0], "margin"),
        (", NULL, NULL, NULL, %s", [float("nan")], "tolerance"),
    ],
)
def test_invalid_parameters_raise_22023(as_role, extra, params, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        voronoi(as_role, [shapely.Point(0, 0), shapely.Point(1, 1)], 3857, extra, *params)
