"""honua_gp.dbscan through a cursor, as the execution role, against a reference DBSCAN."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely

from tests.executors.postgis.support import GEOD, geom, reference_dbscan, wkb

DBSCAN = "SELECT ordinal, cluster_id, ST_AsBinary(geom) FROM honua_gp.dbscan(%s::bytea[], %s, %s, %s{extra})"


def dbscan(as_role, geoms, srid, eps, min_points, extra="", *params):
    rows = as_role(DBSCAN.format(extra=extra), [wkb(geoms), srid, eps, min_points, *params])
    assert [r[0] for r in rows] == list(range(1, len(geoms) + 1))
    return [-1 if r[1] is None else r[1] for r in rows], [geom(r[2]) for r in rows]


def _two_groups_and_noise(rng: np.random.Generator) -> np.ndarray:
    a = rng.normal([0, 0], 3.0, (40, 2))
    b = rng.normal([500, 200], 3.0, (25, 2))
    noise = np.array([[250, -300], [-400, 400], [900, 900], [250, 100]])
    xy = np.vstack([noise[:1], a, noise[1:2], b, noise[2:]])
    return xy


def test_two_separated_groups_and_noise_match_a_reference(as_role):
    xy = _two_groups_and_noise(np.random.default_rng(11))
    labels, geoms = dbscan(as_role, list(shapely.points(xy)), 32632, 15.0, 4)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    assert labels == reference_dbscan(dist, 15.0, 4)
    assert sorted(set(labels)) == [-1, 0, 1]
    assert labels[0] == -1 and labels[1] == 0 and labels[41] == -1 and labels[42] == 1
    assert labels.count(-1) == 4
    assert geoms[5].equals(shapely.Point(xy[5]))  # the input geometry comes back


def test_lon_lat_eps_is_metres_on_the_ground(as_role):
    # At 60N, 0.0018 deg of longitude is ~100 m but 0.0018 deg of latitude is ~200 m.
    lon0, lat0 = 10.0, 60.0
    east = [(lon0 + 0.0018 * i, lat0) for i in range(5)]
    north = [(lon0 + 1.0, lat0 + 0.0018 * i) for i in range(5)]
    pts = np.array(east + north)
    labels, _ = dbscan(as_role, list(shapely.points(pts)), 4326, 150.0, 2)
    n = len(pts)
    _, _, dist = GEOD.inv(
        np.repeat(pts[:, 0], n),
        np.repeat(pts[:, 1], n),
        np.tile(pts[:, 0], n),
        np.tile(pts[:, 1], n),
    )
    assert labels == reference_dbscan(dist.reshape(n, n), 150.0, 2)
    assert labels == [0] * 5 + [-1] * 5


def test_numbering_follows_first_members_and_null_or_empty_inputs_are_noise(as_role):
    pts = [
        shapely.Point(100, 100),
        shapely.Point(0, 0),
        None,
        shapely.Point(100, 101),
        shapely.Point(0, 1),
        shapely.Point(),
    ]
    labels, geoms = dbscan(as_role, pts, 3857, 1.5, 2)
    assert labels == [0, 1, -1, 0, 1, -1]
    assert geoms[2] is None


def test_planar_method_on_lon_lat_takes_degrees(as_role):
    pts = [shapely.Point(10, 60), shapely.Point(10.5, 60), shapely.Point(12, 60)]
    labels, _ = dbscan(as_role, pts, 4326, 0.6, 2, ", %s", "planar")
    assert labels == [0, 0, -1]


def test_min_points_one_makes_every_point_a_cluster(as_role):
    pts = [shapely.Point(0, 0), shapely.Point(10, 0), shapely.Point(10.5, 0)]
    labels, _ = dbscan(as_role, pts, 3857, 1.0, 1)
    assert labels == [0, 1, 1]


@pytest.mark.parametrize(
    ("eps", "min_points", "method", "message"),
    [
        (-1.0, 2, "auto", "eps"),
        (float("inf"), 2, "auto", "eps"),
        (1.0, 0, "auto", "min_points"),
        (1.0, 2, "sideways", "method"),
    ],
)
def test_invalid_parameters_raise_22023(as_role, eps, min_points, method, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        dbscan(as_role, [shapely.Point(0, 0)], 3857, eps, min_points, ", %s", method)
