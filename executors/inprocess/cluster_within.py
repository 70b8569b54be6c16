"""Clusters of features within a distance of each other (directly or through others).

The in-process twin of ``honua_gp.cluster_within`` (ST_ClusterDBSCAN with minpoints 1):
the clusters are the connected components of the graph linking features whose distance is
at most ``distance``. Pairs come from a shapely STRtree ``dwithin`` query (in chunks of
features, so memory follows the pairs of one chunk), components from a vectorised
union-find. Distances are honoured as dbscan's eps (:func:`in_distance_plane`). Clusters
are numbered 0, 1, ... in the order of their first member; a feature near no other is a
cluster of its own; null and empty geometries get -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess import params
from executors.inprocess.clustering import (
    METHODS,
    in_distance_plane,
    number_by_first_member,
    roots,
    union_pairs,
)
from executors.inprocess.job import Job

_FEATURES_PER_QUERY = 1024


def cluster_within(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """The input features with an integer ``cluster_id`` (the ``result`` feature collection)."""
    job, feats = Job.start(ctx, params.features(inputs))
    distance_in = params.linear_unit(inputs, "distance", {"value": 100, "unit": "meter"})
    method = params.choice(inputs, "method", METHODS, "auto")
    if distance_in.value < 0:
        raise InvalidInput("distance: must not be negative")
    geoms = feats.geometries
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    work, distance = in_distance_plane(geoms[usable], distance_in, method, job, "distance")
    job.checkpoint(10, f"{len(work)} features")
    labels = np.full(len(geoms), -1, dtype=np.int64)
    labels[usable] = within_labels(work, distance, job)
    return job.output(feats.with_field("cluster_id", labels.tolist(), "integer"))


def within_labels(geoms: np.ndarray, distance: float, job: Job | None = None) -> np.ndarray:
    """Connected components of "distance <= ``distance``", numbered 0.. by first member."""
    n = len(geoms)
    parent = np.arange(n, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    for lo in range(0, n, _FEATURES_PER_QUERY):
        if job is not None:
            job.checkpoint(10 + 80 * lo // n, f"{lo} of {n} features")
        i, j = tree.query(geoms[lo : lo + _FEATURES_PER_QUERY], "dwithin", distance)
        union_pairs(parent, i + lo, j)
    return number_by_first_member(roots(parent))
