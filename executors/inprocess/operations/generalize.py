"""Vertex editing by tolerance: simplify, generalize (Douglas-Peucker), densify."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.geodesic import geodesic_densify
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.inprocess.metric import METHODS, in_metric_frames
from executors.localframes import Geodetic, wrap_antimeridian
from executors.spatialref import (
    crs_for,
    geodetic_transformer,
    ground_distances,
    transform_geometries,
)


def simplify(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Douglas-Peucker simplification; ``preserve_topology`` (default) keeps rings valid."""
    job, feats = Job.start(ctx, params.features(inputs))
    tolerance = params.linear_unit(inputs, "tolerance")
    preserve = params.boolean(inputs, "preserve_topology", True)
    method = params.choice(inputs, "method", METHODS, "auto")
    result = _simplify(job, feats.geometries, tolerance, preserve, method)
    return job.output(feats.replace(result))


def generalize(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Esri-style Generalize: Douglas-Peucker that never breaks a feature's topology."""
    job, feats = Job.start(ctx, params.features(inputs))
    tolerance = params.linear_unit(inputs, "tolerance")
    method = params.choice(inputs, "method", METHODS, "auto")
    result = _simplify(job, feats.geometries, tolerance, True, method)
    return job.output(feats.replace(result))


def _simplify(
    job: Job, geoms: np.ndarray, tolerance: Any, preserve: bool, method: str
) -> np.ndarray:
    if tolerance.value < 0:
        raise InvalidInput("tolerance: must not be negative")
    t = tolerance.base

    def run(chunk: np.ndarray, per_unit: np.ndarray) -> np.ndarray:
        return shapely.simplify(chunk, t * per_unit, preserve_topology=preserve)

    return in_metric_frames(job, geoms, run, distance=tolerance, method=method)


def densify(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Insert vertices so no segment is longer than ``max_segment_length``.

    Geographic data, ``method: geodesic``, and Web Mercator with ``auto``: the length is on
    the ground and vertices are placed on the geodesic between the original vertices. Other
    projected data (and ``planar``): along straight segments in the CRS's plane and unit. A
    length in degrees densifies planar lon/lat segments.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    length = params.linear_unit(inputs, "max_segment_length")
    method = params.choice(inputs, "method", METHODS, "auto")
    if length.value <= 0:
        raise InvalidInput("max_segment_length: must be positive")
    if length.is_angular:
        if not job.geographic:
            raise InvalidInput("max_segment_length: degrees need geographic data")
        result = job.map(feats.geometries, lambda g: shapely.segmentize(g, length.value))
    elif ground_distances(method, job.work_srid):
        result = job.map(feats.geometries, lambda g: _geodesic(g, job.work_srid, length.meters))
    else:
        per_unit = 1.0 / float(crs_for(job.work_srid).axis_info[0].unit_conversion_factor)
        result = job.map(
            feats.geometries, lambda g: shapely.segmentize(g, length.meters * per_unit)
        )
    return job.output(feats.replace(result))


def _geodesic(geoms: np.ndarray, srid: int, max_length: float) -> np.ndarray:
    crs = crs_for(srid)
    geo = Geodetic.of(crs)
    if crs.is_geographic:
        return wrap_antimeridian(geodesic_densify(geoms, srid, max_length), geo)
    tr = geodetic_transformer(srid)
    lonlat = transform_geometries(geoms, tr)
    dense = wrap_antimeridian(geodesic_densify(lonlat, srid, max_length), geo)
    return transform_geometries(dense, tr, direction="INVERSE")
