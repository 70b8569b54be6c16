"""honua_gp.kmeans through a cursor and through the executor, against scikit-learn."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer
from sklearn.metrics import adjusted_rand_score

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.kmeans import kmeans as inprocess_kmeans
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import (
    blobs,
    by_first_member,
    fc,
    inertia,
    reference_kmeans,
    wkb,
)
from tests.executors.realdata.datasets import read_layer

SQL = "SELECT ordinal, cluster_id FROM honua_gp.kmeans(%s::bytea[], %s, %s{extra})"


def kmeans(as_role, geoms, srid, k, extra="", *params) -> list[int]:
    rows = as_role(SQL.format(extra=extra), [wkb(geoms), srid, k, *params])
    assert [r[0] for r in rows] == list(range(1, len(geoms) + 1))
    return [-1 if r[1] is None else r[1] for r in rows]


def test_separated_blobs_give_sklearns_partition_numbered_by_first_member(as_role):
    xy = blobs(1, 30.0)
    labels = kmeans(as_role, list(shapely.points(xy)), 32632, 5)
    reference = reference_kmeans(xy, 5, 10).labels_
    assert adjusted_rand_score(reference, labels) == 1.0
    assert labels == by_first_member(reference)


def test_overlapping_data_reach_sklearns_inertia_within_one_percent(as_role):
    xy = blobs(2, 300.0)
    labels = kmeans(as_role, list(shapely.points(xy)), 32632, 5)
    reference = reference_kmeans(xy, 5, 10)
    assert inertia(xy, labels) <= reference.inertia_ * 1.01
    assert len(set(labels)) == 5


def test_lon_lat_is_clustered_on_the_ground(as_role):
    lonlat = np.array([10.0, 60.0]) + blobs(3, 40.0) * np.array([2e-5, 1e-5])
    labels = kmeans(as_role, list(shapely.points(lonlat)), 4326, 5)
    lon = np.degrees(np.arctan2(np.sin(np.radians(lonlat[:, 0])).mean(), np.cos(np.radians(lonlat[:, 0])).mean()))
    aeqd = Transformer.from_crs(
        4326, f"+proj=aeqd +lat_0={lonlat[:, 1].mean():.8f} +lon_0={lon:.8f} +datum=WGS84", always_xy=True
    )
    ground = np.column_stack(aeqd.transform(lonlat[:, 0], lonlat[:, 1]))
    reference = reference_kmeans(ground, 5, 10).labels_
    assert labels == by_first_member(reference)


def test_few_distinct_locations_nulls_and_empties(as_role):
    pts = [shapely.Point(0, 0), None, shapely.Point(5, 5), shapely.Point(0, 0), shapely.Point()]
    assert kmeans(as_role, pts, 3857, 2) == [0, -1, 1, 0, -1]
    assert kmeans(as_role, pts, 3857, 3) == [0, -1, 1, 0, -1]  # 2 locations: 2 clusters
    assert kmeans(as_role, [], 3857, 2) == []


@pytest.mark.parametrize(
    ("geoms", "k", "extra", "params", "message"),
    [
        ([shapely.Point(0, 0), shapely.Point(1, 1)], 3, "", [], r"k \(3\) must not exceed the number of points \(2\)"),
        ([shapely.Point(0, 0)], 0, "", [], "k must be at least 1"),
        ([shapely.Point(0, 0)], 1, ", %s", ["sideways"], "method"),
        ([shapely.Point(0, 0), shapely.LineString([(0, 0), (1, 1)])], 1, "", [], "points"),
    ],
)
def test_invalid_input_raises_22023(as_role, geoms, k, extra, params, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        kmeans(as_role, geoms, 3857, k, extra, *params)


def _ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="kmeans", handler="kmeans", **kw)


@pytest.mark.django_db
def test_executor_adds_cluster_ids_and_keeps_the_inputs():
    pts = [shapely.Point(0, 0), shapely.Point(1, 0), None, shapely.Point(100, 100), shapely.Point(101, 100)]
    value = fc(pts, srid=3857, fields=[{"name": "i", "type": "integer"}])
    out = PostGISExecutor().execute("kmeans", {"features": value, "k": 2}, _ctx())["result"]
    assert [f["properties"]["cluster_id"] for f in out["features"]] == [0, 0, -1, 1, 1]
    assert [f["properties"]["i"] for f in out["features"]] == [0, 1, 2, 3, 4]
    assert out["fields"][-1] == {"name": "cluster_id", "type": "integer"}
    assert out["features"][3]["geometry"] == value["features"][3]["geometry"]
    with pytest.raises(InvalidInput, match="must not exceed"):
        PostGISExecutor().execute("kmeans", {"features": value, "k": 5}, _ctx())
    with pytest.raises(InvalidInput, match="k: expected an integer"):
        PostGISExecutor().execute("kmeans", {"features": value, "k": 2.5}, _ctx())


@pytest.mark.django_db
@pytest.mark.parametrize(("srid", "origin", "scale"), [(32632, (5e5, 6.6e6), 1.0), (4326, (10.0, 60.0), 1e-5)])
def test_both_tiers_give_one_labelling_of_separated_blobs(srid, origin, scale):
    xy = np.array(origin) + blobs(6, 25.0) * scale
    inputs = {"features": fc(list(shapely.points(xy)) + [None], srid=srid), "k": 5}
    ours = [f["properties"]["cluster_id"] for f in inprocess_kmeans(inputs, _ctx())["features"]]
    theirs = [
        f["properties"]["cluster_id"]
        for f in PostGISExecutor().execute("kmeans", inputs, _ctx())["result"]["features"]
    ]
    assert ours == theirs and ours[-1] == -1 and set(ours[:-1]) == {0, 1, 2, 3, 4}


def _ground(layer) -> np.ndarray:
    """A layer's points in the azimuthal equidistant frame the tiers use, by pyproj."""
    lonlat = shapely.get_coordinates(layer.lonlat())
    lon = np.degrees(np.arctan2(np.sin(np.radians(lonlat[:, 0])).mean(), np.cos(np.radians(lonlat[:, 0])).mean()))
    aeqd = Transformer.from_crs(
        4326, f"+proj=aeqd +lat_0={lonlat[:, 1].mean():.8f} +lon_0={lon:.8f} +datum=WGS84", always_xy=True
    )
    return np.column_stack(aeqd.transform(lonlat[:, 0], lonlat[:, 1]))


@pytest.mark.django_db
@pytest.mark.parametrize(("k", "postgis_ratio"), [(3, 1.01), (4, 1.03), (5, 1.2), (6, 1.06), (8, 1.2)])
def test_cholera_deaths_on_the_ground_against_sklearns_best_inertia(k, postgis_ratio):
    """Web Mercator input: method auto clusters on the ground. The in-process tier reaches
    scikit-learn's best inertia (50 starts) within 1 %. ST_ClusterKMeans (PostGIS 3.3, one
    deterministic start) settles in a worse local optimum for some k: measured 1.002 (k 3),
    1.019 (4), 1.161 (5), 1.048 (6), 1.150 (8) times the best; the bounds keep that
    measured behaviour, far from what a broken partition would give."""
    deaths = read_layer("snow_maps/SohoPeople.shp")
    inputs = {"features": deaths.collection, "k": k}
    ground = _ground(deaths)
    best = reference_kmeans(ground, k, 50).inertia_
    ours = [f["properties"]["cluster_id"] for f in inprocess_kmeans(inputs, _ctx())["features"]]
    theirs = [
        f["properties"]["cluster_id"]
        for f in PostGISExecutor().execute("kmeans", inputs, _ctx())["result"]["features"]
    ]
    for labels in (ours, theirs):
        assert sorted(set(labels)) == list(range(k)) and labels[0] == 0
    assert inertia(ground, ours) <= best * 1.01
    assert inertia(ground, theirs) <= best * postgis_ratio
