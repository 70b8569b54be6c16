"""k-means partition of points: numpy Lloyd iterations from greedy k-means++ seeds.

The in-process twin of ``honua_gp.kmeans`` (postgis tier, ST_ClusterKMeans). Both cluster
in the same plane (lon/lat and, with method auto, Web Mercator points on the ground, in an
azimuthal equidistant projection centred on them; other projected points in the CRS's
plane) and number clusters 0, 1, ... in the order of their first member, so one partition
gets one labelling whichever tier made it. The partitions themselves may differ where the
data are ambiguous: k-means only finds a local optimum, and the tiers start from different
seeds (here: greedy k-means++ starts from a fixed random seed, ``N_INIT`` of them when
points x clusters is at most ``SMALL_WORK``, else one, the one of least inertia kept, so
one input always gives one answer). Points with no more than k distinct
locations get one cluster per location; null and empty geometries get -1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess import params
from executors.inprocess.clustering import METHODS, number_by_first_member, to_local_metres
from executors.inprocess.job import Job
from executors.spatialref import WEB_MERCATOR_SRIDS

MAX_K = 1000  # the catalog's maximum (executors.postgis.registry.KMEANS_MAX_K too)
SEED = 20261125
N_INIT = 3
SMALL_WORK = 2_000_000  # points x clusters up to which N_INIT starts are made
MAX_ITERATIONS = 300
TOLERANCE = 1e-4


def kmeans(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """The input features with an integer ``cluster_id`` (the ``result`` feature collection)."""
    job, feats = Job.start(ctx, params.features(inputs))
    k = params.integer(inputs, "k", minimum=1, maximum=MAX_K)
    method = params.choice(inputs, "method", METHODS, "auto")
    geoms = feats.geometries
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    points = geoms[usable]
    if np.any(shapely.get_type_id(points) != 0):
        raise InvalidInput("features: kmeans clusters points; other geometry types were given")
    if 0 < len(points) < k:
        raise InvalidInput(f"k: must not exceed the number of points ({len(points)})")
    on_ground = method == "geodesic" or (
        method == "auto" and (job.geographic or job.work_srid in WEB_MERCATOR_SRIDS)
    )
    if on_ground:
        points = to_local_metres(points, job.work_srid)
    job.checkpoint(10, f"{len(points)} points")
    labels = np.full(len(geoms), -1, dtype=np.int64)
    labels[usable] = kmeans_labels(shapely.get_coordinates(points), k, job)
    return job.output(feats.with_field("cluster_id", labels.tolist(), "integer"))


def kmeans_labels(xy: np.ndarray, k: int, job: Job | None = None) -> np.ndarray:
    """k-means labels of coordinates ``xy`` (n, 2), numbered 0.. by first member."""
    if len(xy) == 0:
        return np.empty(0, dtype=np.int64)
    xy = xy - xy.mean(axis=0)  # fewer cancelled digits in the squared distances
    locations, inverse = np.unique(xy, axis=0, return_inverse=True)
    if len(locations) <= k:
        return number_by_first_member(inverse.reshape(-1))
    rng = np.random.default_rng(SEED)
    starts = N_INIT if len(xy) * k <= SMALL_WORK else 1
    best: tuple[np.ndarray, float] | None = None
    for attempt in range(starts):
        if job is not None:
            job.checkpoint(10 + 80 * attempt // starts, f"k-means start {attempt + 1} of {starts}")
        labels, inertia = _lloyd(xy, _seeds(xy, k, rng), job)
        if best is None or inertia < best[1]:
            best = (labels, inertia)
    assert best is not None
    return number_by_first_member(best[0])


def _seeds(xy: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++: each next centre is the best (least potential) of a few points
    drawn with probability proportional to their squared distance to the nearest centre."""
    n = len(xy)
    trials = 2 + int(math.log(k))
    centres = np.empty((k, 2))
    centres[0] = xy[rng.integers(n)]
    closest = ((xy - centres[0]) ** 2).sum(axis=1)
    for c in range(1, k):
        # side="right": a draw of 0 never picks a point already at a centre
        picks = np.searchsorted(np.cumsum(closest), rng.random(trials) * closest.sum(), "right")
        picks = np.minimum(picks, n - 1)
        candidate = np.minimum(closest, ((xy[None, :, :] - xy[picks][:, None, :]) ** 2).sum(axis=2))
        best = int(np.argmin(candidate.sum(axis=1)))
        centres[c] = xy[picks[best]]
        closest = candidate[best]
    return centres


def _nearest(xy: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each point's nearest centre and the squared distance to it (one pass over
    the points per centre: a matrix product with an inner dimension of 2 is slower, and
    BLAS threads crawl on a busy machine)."""
    x, y = xy[:, 0], xy[:, 1]
    labels = np.zeros(len(xy), dtype=np.int64)
    d2 = (x - centres[0, 0]) ** 2 + (y - centres[0, 1]) ** 2
    for c in range(1, len(centres)):
        d = (x - centres[c, 0]) ** 2 + (y - centres[c, 1]) ** 2
        closer = d < d2
        labels[closer] = c
        np.minimum(d2, d, out=d2)
    return labels, d2


def _lloyd(xy: np.ndarray, centres: np.ndarray, job: Job | None) -> tuple[np.ndarray, float]:
    """Lloyd iterations until no point changes cluster or the centres move less than
    ``TOLERANCE`` of the data's variance (scikit-learn's rule): (labels, inertia)."""
    k = len(centres)
    settled = TOLERANCE * float(np.var(xy, axis=0).mean())
    labels, d2 = _nearest(xy, centres)
    for _ in range(MAX_ITERATIONS):
        if job is not None:
            job.checkpoint()
        counts = np.bincount(labels, minlength=k)
        sums = np.stack(
            [np.bincount(labels, xy[:, 0], k), np.bincount(labels, xy[:, 1], k)], axis=1
        )
        moved = sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):  # an emptied cluster restarts at the points farthest from theirs
            moved[empty] = xy[np.argsort(d2)[::-1][: len(empty)]]
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        new_labels, d2 = _nearest(xy, centres)
        if np.array_equal(new_labels, labels) or shift <= settled:
            labels = new_labels
            break
        labels = new_labels
    return labels, float(d2.sum())
