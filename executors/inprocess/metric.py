"""Distances in their unit: ground metres through local frames, or planar degrees."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from executors.base import InvalidInput
from executors.inprocess.job import Job
from executors.inprocess.params import LinearUnit
from executors.localframes import metric_apply
from executors.spatialref import ground_distances

METHODS = ("auto", "planar", "geodesic")


def in_metric_frames(
    job: Job,
    geoms: np.ndarray,
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    distance: LinearUnit | None = None,
    method: str = "auto",
    split_wide: bool = False,
) -> np.ndarray:
    """Run ``fn(geoms, per_base_unit)`` chunk by chunk; a distance ``d`` of ``distance.base``
    is ``d * per_base_unit`` in the geometries' frame.

    Geographic working CRS: local TM frames, distances on the ground (``method`` has no
    effect). Projected: ground distances through its geographic base with ``geodesic``, and
    with ``auto`` on Web Mercator (see :func:`executors.spatialref.ground_distances`);
    otherwise the CRS's plane and unit (``planar``, ``auto`` on other projected CRSs, and
    any call without a ``distance``). A "degree" distance means planar degrees and needs
    geographic data.
    """
    if distance is not None and distance.is_angular:
        if not job.geographic:
            raise InvalidInput(
                f"a distance in degrees needs geographic data; EPSG:{job.work_srid} is projected"
            )
        return job.map(geoms, lambda chunk: fn(chunk, np.ones(len(chunk))))
    # Shapes without a distance (centroids, enclosing circles...) of projected data stay in
    # its plane.
    ground = ground_distances(method, job.work_srid) if distance is not None else False
    return job.map(
        geoms,
        lambda chunk: metric_apply(
            chunk, job.work_srid, fn, geodesic=ground, split_wide=split_wide
        ),
    )
