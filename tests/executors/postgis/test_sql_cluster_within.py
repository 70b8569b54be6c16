"""honua_gp.cluster_within through a cursor and the executor against scipy's connected
components; the in-process tier gives the same answers (John Snow's cholera deaths too)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.cluster_within import cluster_within
from executors.postgis.executor import PostGISExecutor
from tests.executors.inprocess.test_clusters import components
from tests.executors.postgis.support import GEOD, by_first_member, fc, wkb
from tests.executors.realdata.datasets import Layer, read_layer

SQL = "SELECT ordinal, cluster_id FROM honua_gp.cluster_within(%s::bytea[], %s, %s{extra})"


def within(as_role, geoms, srid, distance, extra="", *params) -> list[int]:
    rows = as_role(SQL.format(extra=extra), [wkb(geoms), srid, distance, *params])
    assert [r[0] for r in rows] == list(range(1, len(geoms) + 1))
    return [-1 if r[1] is None else r[1] for r in rows]


def test_points_and_polygons_match_scipy_components(as_role):
    rng = np.random.default_rng(31)
    pts = shapely.points(np.vstack([rng.normal(0, 20, (120, 2)), rng.uniform(-200, 200, (80, 2))]))
    for distance in (0.0, 4.0, 12.0):
        assert within(as_role, list(pts), 32632, distance) == components(pts, distance)
    polys = shapely.buffer(shapely.points(rng.uniform(0, 3000, (80, 2))), rng.uniform(5, 60, 80))
    assert within(as_role, list(polys), 32632, 40.0) == components(polys, 40.0)


def test_nulls_and_empties_are_in_no_cluster_and_isolated_features_are_their_own(as_role):
    geoms = [shapely.Point(0, 0), None, shapely.Point(50, 0), shapely.Point(), shapely.Point(0, 1)]
    assert within(as_role, geoms, 3857, 2.0, ", %s", "planar") == [0, -1, 1, -1, 0]


def test_lon_lat_distance_is_metres_on_the_ground(as_role):
    # at 60N, 0.0018 degrees of longitude is ~100 m, of latitude ~200 m
    pts = [shapely.Point(10, 60), shapely.Point(10.0018, 60), shapely.Point(10, 60.0018)]
    assert within(as_role, pts, 4326, 150.0) == [0, 0, 1]


@pytest.mark.parametrize(("distance", "method"), [(-1.0, "auto"), (float("nan"), "auto"), (1.0, "x")])
def test_invalid_parameters_raise_22023(as_role, distance, method):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="distance|method"):
        within(as_role, [shapely.Point(0, 0)], 3857, distance, ", %s", method)


@pytest.fixture(scope="module")
def deaths() -> Layer:
    """John Snow's 1854 cholera deaths by address (324 points, Web Mercator .prj)."""
    return read_layer("snow_maps/SohoPeople.shp")


def _ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="cluster_within", handler="cluster_within", **kw)


@pytest.mark.django_db
def test_cholera_deaths_within_20_m_on_the_ground_both_tiers(deaths):
    inputs = {"features": deaths.collection, "distance": {"value": 20, "unit": "meter"}}
    ours = [f["properties"]["cluster_id"] for f in cluster_within(inputs, _ctx())["features"]]
    theirs = [
        f["properties"]["cluster_id"]
        for f in PostGISExecutor().execute("cluster_within", inputs, _ctx())["result"]["features"]
    ]
    # independent: geodesic distances between the deaths' lon/lat positions (pyproj)
    lonlat = shapely.get_coordinates(deaths.lonlat())
    n = len(lonlat)
    _, _, d = GEOD.inv(
        np.repeat(lonlat[:, 0], n), np.repeat(lonlat[:, 1], n), np.tile(lonlat[:, 0], n), np.tile(lonlat[:, 1], n)
    )
    i, j = np.nonzero(d.reshape(n, n) <= 20.0)
    _, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    assert ours == theirs == by_first_member(labels)
    assert 10 < len(set(ours)) < n


@pytest.mark.django_db
def test_executor_errors_are_invalid_input():
    with pytest.raises(InvalidInput, match="distance"):
        PostGISExecutor().execute(
            "cluster_within",
            {"features": fc([shapely.Point(0, 0)], srid=3857), "distance": {"value": -1, "unit": "meter"}},
            _ctx(),
        )
    with pytest.raises(InvalidInput, match="degrees needs geographic"):
        PostGISExecutor().execute(
            "cluster_within",
            {"features": fc([shapely.Point(0, 0)], srid=3857), "distance": {"value": 1, "unit": "degree"}},
            _ctx(),
        )
