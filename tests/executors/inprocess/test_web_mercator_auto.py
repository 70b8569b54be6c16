"""Method ``auto`` of the operations taking a linear distance: on the ground for lon/lat and
for Web Mercator data (whose plane "metres" are cos φ metres on the ground: 0.62 in Soho),
in the plane for other projected CRSs; ``planar`` and ``geodesic`` stay explicit choices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from executors.spatialref import WEB_MERCATOR_SRIDS, ground_distances
from tests.executors.inprocess.support import GEOD, fc, geoms, meters, run

SOHO = (-0.1367, 51.5133)
COS = math.cos(math.radians(SOHO[1]))  # ground metres per Web Mercator unit here


def _at_soho(srid: int) -> tuple[float, float]:
    return Transformer.from_crs(4326, srid, always_xy=True).transform(*SOHO)


def _line(srid: int, bump: float = 0.0) -> shapely.LineString:
    """A 1,000-unit east-west line through Soho, its middle vertex ``bump`` units north."""
    x, y = _at_soho(srid)
    return shapely.LineString([(x, y), (x + 500, y + bump), (x + 1000, y)])


# (handler, distance input, extra inputs, geometry)
OPERATIONS = [
    ("buffer", "distance", {}, lambda srid: shapely.Point(_at_soho(srid))),
    ("offset_curve", "distance", {}, _line),
    ("simplify", "tolerance", {}, lambda srid: _line(srid, 40.0)),
    ("generalize", "tolerance", {}, lambda srid: _line(srid, 40.0)),
    ("densify", "max_segment_length", {}, _line),
]


def _run(handler, name, extra, geom, srid, method=None):
    inputs = {"features": fc([geom(srid)], srid=srid), name: meters(30), **extra}
    if method is not None:
        inputs["method"] = method
    return geoms(run(handler, inputs))[0]


@pytest.mark.parametrize(("handler", "name", "extra", "geom"), OPERATIONS)
def test_auto_on_web_mercator_is_geodesic(handler, name, extra, geom):
    auto = _run(handler, name, extra, geom, 3857)
    assert shapely.equals_exact(auto, _run(handler, name, extra, geom, 3857, "geodesic"), 0.0)
    assert not shapely.equals_exact(auto, _run(handler, name, extra, geom, 3857, "planar"), 1e-3)


@pytest.mark.parametrize(("handler", "name", "extra", "geom"), OPERATIONS)
def test_auto_on_other_projected_crs_is_planar(handler, name, extra, geom):
    auto = _run(handler, name, extra, geom, 32630)  # UTM 30N, Soho near its central meridian
    assert shapely.equals_exact(auto, _run(handler, name, extra, geom, 32630, "planar"), 0.0)


@pytest.mark.parametrize("srid", sorted(WEB_MERCATOR_SRIDS - {102113}))
def test_every_web_mercator_code_buffers_on_the_ground_by_default(srid):
    # (pyproj has no EPSG:102113, so the in-process tier refuses it as an unknown CRS)
    x, y = _at_soho(srid)
    result = run(
        "buffer",
        {"features": fc([shapely.Point(x, y)], srid=srid), "distance": meters(50)},
        out_srid=4326,
    )
    ring = shapely.get_coordinates(geoms(result)[0].exterior)
    _, _, dist = GEOD.inv(np.full(len(ring), SOHO[0]), np.full(len(ring), SOHO[1]), *ring.T)
    # EPSG:3785's datum is a sphere of radius 6378137 m: its ground is that sphere's, up to
    # 0.3 % off the WGS 84 ellipsoid measured here
    np.testing.assert_allclose(dist, 50.0, rtol=5e-3 if srid == 3785 else 1e-4)


def test_ground_distances_rule():
    assert ground_distances("auto", 4326) and ground_distances("planar", 4326)
    for srid in WEB_MERCATOR_SRIDS:
        assert ground_distances("auto", srid) and not ground_distances("planar", srid)
        assert ground_distances("geodesic", srid)
    assert not ground_distances("auto", 32630) and not ground_distances("planar", 32630)
    assert ground_distances("geodesic", 32630)


def test_simplify_tolerance_on_web_mercator_is_on_the_ground():
    # the bump is 40 plane units, ~25 m on the ground: a 30 m tolerance removes it by
    # default (auto) and keeps it in the plane (planar)
    line = _line(3857, 40.0)
    feats = fc([line], srid=3857)
    auto = geoms(run("simplify", {"features": feats, "tolerance": meters(30)}))[0]
    planar = geoms(
        run("simplify", {"features": feats, "tolerance": meters(30), "method": "planar"})
    )[0]
    assert len(auto.coords) == 2 and len(planar.coords) == 3


def test_densify_segment_length_on_web_mercator_is_on_the_ground():
    # each half of the line (500 plane units) is ~311 m on the ground: 4 pieces of at most
    # 100 m by default, 5 pieces of 100 plane units with planar
    feats = fc([_line(3857)], srid=3857)
    auto = geoms(run("densify", {"features": feats, "max_segment_length": meters(100)}))[0]
    planar = geoms(
        run(
            "densify",
            {"features": feats, "max_segment_length": meters(100), "method": "planar"},
        )
    )[0]
    assert len(auto.coords) == 9 and len(planar.coords) == 11
    lonlat = Transformer.from_crs(3857, 4326, always_xy=True).transform(*np.asarray(auto.xy))
    _, _, pieces = GEOD.inv(lonlat[0][:-1], lonlat[1][:-1], lonlat[0][1:], lonlat[1][1:])
    assert max(pieces) <= 100.0


def test_offset_curve_on_web_mercator_is_on_the_ground():
    # 30 m to the left of an eastward line: 30 / cos φ ≈ 48 plane units north by default
    feats = fc([_line(3857)], srid=3857)
    auto = geoms(run("offset_curve", {"features": feats, "distance": meters(30)}))[0]
    planar = geoms(
        run("offset_curve", {"features": feats, "distance": meters(30), "method": "planar"})
    )[0]
    y = _at_soho(3857)[1]
    assert auto.bounds[1] - y == pytest.approx(30.0 / COS, rel=1e-3)
    assert planar.bounds[1] - y == pytest.approx(30.0, rel=1e-9)


def test_dbscan_eps_on_web_mercator_is_on_the_ground():
    # points 80 plane units apart are ~50 m apart on the ground: one cluster with a 60 m eps
    # by default, noise in the plane
    x, y = _at_soho(3857)
    pts = [shapely.Point(x + 80 * i, y) for i in range(4)]
    inputs = {"features": fc(pts, srid=3857), "eps": meters(60), "min_points": 2}
    auto = run("dbscan", inputs)
    planar = run("dbscan", {**inputs, "method": "planar"})
    assert [f["properties"]["cluster_id"] for f in auto["features"]] == [0, 0, 0, 0]
    assert [f["properties"]["cluster_id"] for f in planar["features"]] == [-1, -1, -1, -1]
