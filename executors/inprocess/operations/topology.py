"""Linework and validity: line merge, polygonize, make valid, validate."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.inprocess.parts import explode, keep_dimension


def line_merge(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Join lines that meet end to end (optionally only within a ``dissolve_field`` value).

    Each merged line is one output feature; with ``directed`` only lines whose direction
    agrees are joined. Lines are not noded: crossings do not split them.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    field = params.string(inputs, "dissolve_field")
    directed = params.boolean(inputs, "directed", False)
    lines, owner = explode(keep_dimension(feats.geometries, 1))
    if field is None:
        group = np.zeros(len(lines), dtype=np.intp)
        props: list[dict[str, Any]] = [{}]
    else:
        keys = []
        for i in owner.tolist():
            if field not in feats.properties[i]:
                raise InvalidInput(f"dissolve_field: feature {i} has no property '{field}'")
            keys.append(orjson.dumps(feats.properties[i][field], option=orjson.OPT_SORT_KEYS))
        uniq: dict[bytes, int] = {}
        group = np.array([uniq.setdefault(k, len(uniq)) for k in keys], dtype=np.intp)
        props = [{field: orjson.loads(k)} for k in uniq]
    job.checkpoint(10, None)
    order = np.argsort(group, kind="stable")
    bundles = np.empty(len(props), dtype=object)
    if len(lines):
        shapely.multilinestrings(lines[order], indices=group[order], out=bundles)
    present = np.flatnonzero(~shapely.is_missing(bundles))
    merged = np.empty(len(props), dtype=object)
    merged[present] = shapely.line_merge(bundles[present], directed=directed)
    parts, of_group = explode(merged)
    out_props = [dict(props[g]) for g in of_group.tolist()]
    return job.output(Features(parts, out_props, [None] * len(parts), feats.srid))


def polygonize(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Polygons enclosed by the input linework (lines and polygon edges), noded first."""
    job, feats = Job.start(ctx, params.features(inputs))
    edges = np.where(
        shapely.get_dimensions(feats.geometries) == 2,
        shapely.boundary(feats.geometries),
        keep_dimension(feats.geometries, 1),
    )
    lines, _ = explode(np.asarray(edges, dtype=object))
    if len(lines) == 0:
        return job.output(Features(np.empty(0, dtype=object), [], [], feats.srid))
    noded = shapely.union_all(lines)
    job.checkpoint(50, "noded")
    faces, _ = explode(np.array([shapely.polygonize(shapely.get_parts(noded))], dtype=object))
    return job.output(
        Features(faces, [{} for _ in range(len(faces))], [None] * len(faces), feats.srid)
    )


def make_valid(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Repair invalid geometries (GEOS MakeValid); valid ones are returned unchanged.

    ``structure`` (default) rebuilds areas from rings (collapsed parts dropped unless
    ``keep_collapsed``); ``linework`` keeps every edge, possibly as extra lines or points.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    method = params.choice(inputs, "method", ("structure", "linework"), "structure")
    keep = params.boolean(inputs, "keep_collapsed", False)
    if method == "linework":
        keep = True
    result = job.map(
        feats.geometries, lambda g: shapely.make_valid(g, method=method, keep_collapsed=keep)
    )
    return job.output(feats.replace(result))


def validate(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Each feature with ``is_valid`` and ``reason`` (GEOS's reason, e.g. a self-intersection
    and its location; "Valid Geometry" when valid; null for a null geometry)."""
    job, feats = Job.start(ctx, params.features(inputs))
    reasons = job.map(feats.geometries, shapely.is_valid_reason)
    missing = shapely.is_missing(feats.geometries)
    valid = [
        None if m else r == "Valid Geometry"
        for r, m in zip(reasons.tolist(), missing.tolist(), strict=True)
    ]
    out = feats.with_field("is_valid", valid, "boolean")
    out = out.with_field(
        "reason",
        [None if m else r for r, m in zip(reasons.tolist(), missing.tolist(), strict=True)],
        "string",
    )
    return job.output(out)
