"""The in-process kmeans and cluster_within fallbacks, without a database, against
scikit-learn and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import adjusted_rand_score

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess.cluster_within import cluster_within
from executors.inprocess.kmeans import kmeans, kmeans_labels
from tests.executors.postgis.support import blobs, by_first_member, fc, inertia, reference_kmeans


def _ctx(handler: str) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id=handler, handler=handler)


def _labels(out: dict) -> list[int]:
    return [f["properties"]["cluster_id"] for f in out["features"]]


def components(geoms: np.ndarray, distance: float) -> list[int]:
    """Connected components of the full "distance <= d" matrix, numbered by first member."""
    d = shapely.distance(geoms[:, None], geoms[None, :])
    i, j = np.nonzero(d <= distance)
    n = len(geoms)
    _, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    return by_first_member(labels)


@pytest.mark.parametrize("seed", [1, 4, 7])
def test_kmeans_separated_blobs_are_sklearns_partition(seed):
    xy = blobs(seed, 30.0)
    labels = kmeans_labels(xy, 5)
    reference = reference_kmeans(xy, 5, 10).labels_
    assert adjusted_rand_score(reference, labels) == 1.0
    assert labels.tolist() == by_first_member(reference)


@pytest.mark.parametrize("seed", [2, 5, 9])
def test_kmeans_overlapping_data_reach_sklearns_inertia_within_one_percent(seed):
    xy = blobs(seed, 300.0)
    labels = kmeans_labels(xy, 5)
    reference = reference_kmeans(xy, 5, 10)
    assert inertia(xy, labels) <= reference.inertia_ * 1.01
    assert kmeans_labels(xy, 5).tolist() == labels.tolist()  # a fixed seed: one answer


def test_kmeans_handler_features_nulls_few_locations_and_errors():
    pts = [shapely.Point(0, 0), None, shapely.Point(5, 5), shapely.Point(0, 0), shapely.Point()]
    out = kmeans({"features": fc(pts, srid=3857), "k": 3}, _ctx("kmeans"))
    assert _labels(out) == [0, -1, 1, 0, -1]
    assert out["features"][2]["properties"]["name"] == "feature 2"
    with pytest.raises(InvalidInput, match="must not exceed the number of points"):
        kmeans({"features": fc(pts[:1], srid=3857), "k": 2}, _ctx("kmeans"))
    with pytest.raises(InvalidInput, match="points"):
        kmeans({"features": fc([shapely.LineString([(0, 0), (1, 1)])] * 3), "k": 2}, _ctx("kmeans"))
    with pytest.raises(InvalidInput, match="k"):
        kmeans({"features": fc(pts, srid=3857), "k": 0}, _ctx("kmeans"))


def test_cluster_within_points_match_scipy_components():
    rng = np.random.default_rng(12)
    xy = np.vstack([rng.normal(0, 20, (150, 2)), rng.uniform(-200, 200, (100, 2))])
    pts = shapely.points(xy)
    for distance in (0.0, 3.0, 8.0, 25.0):
        out = cluster_within(
            {"features": fc(list(pts), srid=32632), "distance": {"value": distance, "unit": "meter"}},
            _ctx("cluster_within"),
        )
        assert _labels(out) == components(pts, distance)


def test_cluster_within_lines_and_polygons_and_feet():
    rng = np.random.default_rng(13)
    centres = rng.uniform(0, 2000, (120, 2))
    polys = shapely.buffer(shapely.points(centres[:60]), rng.uniform(5, 30, 60))
    lines = shapely.linestrings(np.stack([centres[60:], centres[60:] + rng.uniform(-50, 50, (60, 2))], axis=1))
    geoms = np.concatenate([polys, lines])
    value = fc(list(geoms) + [None], srid=32632)
    out = cluster_within({"features": value, "distance": {"value": 100, "unit": "foot"}}, _ctx("cluster_within"))
    assert _labels(out)[:-1] == components(geoms, 30.48)
    assert _labels(out)[-1] == -1
    assert len(set(_labels(out))) > 10
