"""Constructions from each feature: buffer, offset curve, hulls, envelopes, centres, circles."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from executors.base import ExecutionContext
from executors.geodata import Features
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.inprocess.metric import METHODS, in_metric_frames
from executors.inprocess.parts import explode, keep_dimension

CAP_STYLES = ("round", "flat", "square")
JOIN_STYLES = ("round", "mitre", "bevel")


def buffer(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Polygons at ``distance`` around each feature (negative shrinks polygons)."""
    job, feats = Job.start(ctx, params.features(inputs))
    distance = params.linear_unit(inputs, "distance")
    method = params.choice(inputs, "method", METHODS, "auto")
    quad_segs = params.integer(inputs, "quad_segs", 8, minimum=1, maximum=64)
    cap_style = params.choice(inputs, "cap_style", CAP_STYLES, "round")
    join_style = params.choice(inputs, "join_style", JOIN_STYLES, "round")
    dissolve = params.boolean(inputs, "dissolve", False)
    d = distance.base

    def run(geoms: np.ndarray, per_unit: np.ndarray) -> np.ndarray:
        return shapely.buffer(
            geoms, d * per_unit, quad_segs=quad_segs, cap_style=cap_style, join_style=join_style
        )

    result = in_metric_frames(
        job, feats.geometries, run, distance=distance, method=method, split_wide=d > 0
    )
    if dissolve:
        return job.output(_one(feats.srid, shapely.union_all(result)))
    return job.output(feats.replace(result))


def offset_curve(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Lines parallel to each line (polygon boundaries too); positive ``distance`` is left."""
    job, feats = Job.start(ctx, params.features(inputs))
    distance = params.linear_unit(inputs, "distance")
    method = params.choice(inputs, "method", METHODS, "auto")
    quad_segs = params.integer(inputs, "quad_segs", 8, minimum=1, maximum=64)
    join_style = params.choice(inputs, "join_style", JOIN_STYLES, "round")
    d = distance.base
    lines = np.asarray(shapely.boundary(feats.geometries), dtype=object)
    areal = shapely.get_dimensions(feats.geometries) == 2
    lines = np.where(areal, lines, keep_dimension(feats.geometries, 1))

    def run(geoms: np.ndarray, per_unit: np.ndarray) -> np.ndarray:
        return shapely.offset_curve(geoms, d * per_unit, quad_segs=quad_segs, join_style=join_style)

    result = in_metric_frames(job, lines, run, distance=distance, method=method)
    return job.output(feats.replace(result))


def convex_hull(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Convex hull of each feature (or of all with ``dissolve``), planar in the working CRS."""
    job, feats = Job.start(ctx, params.features(inputs))
    if params.boolean(inputs, "dissolve", False):
        return job.output(_one(feats.srid, shapely.convex_hull(_all(feats))))
    return job.output(feats.replace(job.map(feats.geometries, shapely.convex_hull)))


def envelope(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Bounding rectangle of each feature (or of all), in working-CRS coordinates."""
    job, feats = Job.start(ctx, params.features(inputs))
    if params.boolean(inputs, "dissolve", False):
        return job.output(_one(feats.srid, shapely.envelope(_all(feats))))
    return job.output(feats.replace(job.map(feats.geometries, shapely.envelope)))


def centroid(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Centre of mass of each feature (computed in a local metric frame for lon/lat data)."""
    job, feats = Job.start(ctx, params.features(inputs))
    result = in_metric_frames(job, feats.geometries, lambda g, _: shapely.centroid(g))
    return job.output(feats.replace(result))


def label_points(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """A point guaranteed inside each feature (GEOS point on surface)."""
    job, feats = Job.start(ctx, params.features(inputs))
    return job.output(feats.replace(job.map(feats.geometries, shapely.point_on_surface)))


def minimum_bounding_circle(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Smallest enclosing circle of each feature (or of all), round on the ground."""
    return _enclosing(inputs, ctx, shapely.minimum_bounding_circle)


def minimum_rotated_rectangle(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Smallest-area enclosing rectangle of each feature (or of all), in a metric frame."""
    return _enclosing(inputs, ctx, shapely.minimum_rotated_rectangle)


def _enclosing(inputs: dict[str, Any], ctx: ExecutionContext, fn: Any) -> dict[str, Any]:
    job, feats = Job.start(ctx, params.features(inputs))
    if params.boolean(inputs, "dissolve", False):
        merged = np.array([_all(feats)], dtype=object)
        result = in_metric_frames(job, merged, lambda g, _: fn(g))
        return job.output(_one(feats.srid, result[0]))
    result = in_metric_frames(job, feats.geometries, lambda g, _: fn(g))
    return job.output(feats.replace(result))


def _all(feats: Features) -> shapely.Geometry:
    parts, _ = explode(feats.geometries)
    return shapely.geometrycollections(parts)


def _one(srid: int, geom: shapely.Geometry) -> Features:
    return Features(np.array([geom], dtype=object), [{}], [None], srid)
