"""The in-process dbscan fallback gives the postgis tier's answers (borders included)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from executors.base import ExecutionContext
from executors.inprocess.clustering import cluster_labels, dbscan
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import fc, reference_dbscan


def _ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="dbscan", handler="dbscan", **kw)


def _labels(out: dict) -> list[int]:
    return [f["properties"]["cluster_id"] for f in out["features"]]


def test_cluster_labels_match_the_reference_without_a_database():
    rng = np.random.default_rng(4)
    xy = np.vstack(
        [rng.normal(0, 5, (150, 2)), rng.normal(60, 8, (150, 2)), rng.uniform(-50, 120, (60, 2))]
    )
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    for eps, min_points in [(2.0, 4), (4.0, 6), (0.0, 1), (10.0, 1), (1e6, 400)]:
        core = (dist <= eps).sum(axis=1) >= min_points
        got = cluster_labels(xy, eps, min_points).tolist()
        want = reference_dbscan(dist, eps, min_points)
        # Core points agree exactly; borders may go to either reachable cluster in the
        # reference, so compare them with PostGIS's rule in the database test below.
        assert [g for g, c in zip(got, core, strict=True) if c] == [
            w for w, c in zip(want, core, strict=True) if c
        ]
        assert [g == -1 for g in got] == [w == -1 for w in want]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("srid", "scale", "eps", "min_points"),
    [(3857, 1.0, 3.0, 5), (4326, 1e-5, 4.0, 4), (32632, 1.0, 0.0, 2)],
)
def test_inprocess_and_postgis_agree(srid, scale, eps, min_points):
    rng = np.random.default_rng(9)
    xy = np.vstack(
        [rng.normal(0, 4, (300, 2)), rng.normal(40, 6, (300, 2)), rng.uniform(-30, 80, (100, 2))]
    )
    xy = np.round(xy, 0) if eps == 0 else xy  # coincident points for eps 0
    origin = np.array([10.0, 60.0]) if srid == 4326 else np.array([500_000.0, 6_600_000.0])
    pts = list(shapely.points(origin + xy * scale)) + [None]
    inputs = {
        "features": fc(pts, srid=srid),
        "eps": {"value": eps, "unit": "meter"},
        "min_points": min_points,
    }
    ours = _labels(dbscan(inputs, _ctx()))
    theirs = _labels(PostGISExecutor().execute("dbscan", inputs, _ctx())["result"])
    assert ours == theirs
    assert len(set(ours)) > 2 and ours[-1] == -1
