"""Handler name -> operation. Each operation takes (inputs, ctx) and returns outputs by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from executors.base import ExecutionContext
from executors.inprocess import cluster_within, clustering, gridding, kmeans
from executors.inprocess.echo import echo
from executors.inprocess.operations import (
    construct,
    editing,
    generalize,
    measure,
    overlay,
    reproject,
    topology,
    triangulation,
)

Operation = Callable[[dict[str, Any], ExecutionContext], dict[str, Any]]


def _result(fn: Callable[[dict[str, Any], ExecutionContext], dict[str, Any]]) -> Operation:
    """Wrap an operation returning a feature collection as the ``result`` output."""

    def run(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
        return {"result": fn(inputs, ctx)}

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


HANDLERS: dict[str, Operation] = {
    name: _result(fn)
    for name, fn in {
        "buffer": construct.buffer,
        "offset_curve": construct.offset_curve,
        "convex_hull": construct.convex_hull,
        "envelope": construct.envelope,
        "centroid": construct.centroid,
        "label_points": construct.label_points,
        "minimum_bounding_circle": construct.minimum_bounding_circle,
        "minimum_rotated_rectangle": construct.minimum_rotated_rectangle,
        "union": overlay.union,
        "intersection": overlay.intersection,
        "difference": overlay.difference,
        "symmetric_difference": overlay.symmetric_difference,
        "areas": measure.areas,
        "lengths": measure.lengths,
        "distance": measure.distance,
        "simplify": generalize.simplify,
        "generalize": generalize.generalize,
        "densify": generalize.densify,
        "cut": editing.cut,
        "reshape": editing.reshape,
        "trim_extend": editing.trim_extend,
        "line_merge": topology.line_merge,
        "polygonize": topology.polygonize,
        "make_valid": topology.make_valid,
        "validate": topology.validate,
        "voronoi": triangulation.voronoi,
        "delaunay": triangulation.delaunay,
        "project": reproject.project,
        "dbscan": clustering.dbscan,
        "kmeans": kmeans.kmeans,
        "cluster_within": cluster_within.cluster_within,
        "hexbin": gridding.hexbin,
        "idw": gridding.idw,
    }.items()
}
HANDLERS["echo"] = echo
