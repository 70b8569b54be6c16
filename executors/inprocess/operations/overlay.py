"""Overlays: union (dissolve), intersection, difference, symmetric difference.

Computed planar in the working CRS (edges are straight in its coordinates). Pairs of
candidate features come from an STRtree query; each feature's overlapping overlay features
are gathered into one GeometryCollection so a single vectorized GEOS call does the work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.inprocess.parts import keep_dimension, union_groups


def union(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Dissolve all features into one, or one per distinct value of ``dissolve_field``."""
    job, feats = Job.start(ctx, params.features(inputs))
    field = params.string(inputs, "dissolve_field")
    if field is None:
        merged = union_groups(feats.geometries, np.zeros(len(feats), dtype=np.intp), 1)
        return job.output(Features(merged, [{}], [None], feats.srid))
    missing = next((i for i, p in enumerate(feats.properties) if field not in p), None)
    if missing is not None and len(feats):
        raise InvalidInput(f"dissolve_field: feature {missing} has no property '{field}'")
    keys = [orjson.dumps(p[field], option=orjson.OPT_SORT_KEYS) for p in feats.properties]
    uniq: dict[bytes, int] = {}
    group = np.fromiter(
        (uniq.setdefault(k, len(uniq)) for k in keys), dtype=np.intp, count=len(keys)
    )
    job.checkpoint(10, f"{len(uniq)} groups")
    merged = union_groups(feats.geometries, group, len(uniq))
    props = [{field: orjson.loads(k)} for k in uniq]
    return job.output(Features(merged, props, [None] * len(uniq), feats.srid))


def intersection(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """One feature per intersecting (feature, overlay feature) pair, with both attributes.

    The result keeps the lower dimension of the pair (polygon x polygon -> polygons; line x
    polygon -> lines); touching-only contacts of lower dimension are dropped. Overlay
    properties whose name the feature already uses are prefixed ``overlay_``; ``input_id``
    and ``overlay_id`` carry the ids of the pair.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    overlay = job.to_work(params.features(inputs, "overlay"))
    left, right = _pairs(feats, overlay, "intersects")
    job.checkpoint(10, f"{len(left)} candidate pairs")
    geoms = job.map(
        np.column_stack([feats.geometries[left], overlay.geometries[right]]),
        lambda ab: shapely.intersection(ab[:, 0], ab[:, 1]),
    )
    dims = np.minimum(
        shapely.get_dimensions(feats.geometries[left]),
        shapely.get_dimensions(overlay.geometries[right]),
    )
    geoms = keep_dimension(geoms, dims)
    keep = ~shapely.is_missing(geoms)
    left, right, geoms = left[keep], right[keep], geoms[keep]
    props = [
        _merge(feats.properties[i], overlay.properties[j], feats.ids[i], overlay.ids[j])
        for i, j in zip(left.tolist(), right.tolist(), strict=True)
    ]
    return job.output(Features(geoms, props, [None] * len(props), feats.srid))


def difference(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Each feature minus the overlay features it overlaps (fully erased features are dropped)."""
    job, feats = Job.start(ctx, params.features(inputs))
    overlay = job.to_work(params.features(inputs, "overlay"))
    result = _erase(job, feats, overlay)
    keep = ~shapely.is_empty(result)
    return job.output(feats.replace(result).take(np.flatnonzero(keep)))


def symmetric_difference(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Parts of features outside the overlay plus parts of the overlay outside the features.

    Each output feature keeps its own attributes and a ``source`` property
    (``features`` or ``overlay``).
    """
    job, feats = Job.start(ctx, params.features(inputs))
    overlay = job.to_work(params.features(inputs, "overlay"))
    a = _erase(job, feats, overlay)
    b = _erase(job, overlay, feats)
    geoms = np.concatenate([a, b])
    props = [{**p, "source": "features"} for p in feats.properties] + [
        {**p, "source": "overlay"} for p in overlay.properties
    ]
    ids = list(feats.ids) + list(overlay.ids)
    keep = np.flatnonzero(~shapely.is_empty(geoms))
    out = Features(geoms, props, ids, feats.srid, feats.fields).take(keep)
    if out.fields is not None:
        out.fields = [*out.fields, {"name": "source", "type": "string"}]
    return job.output(out)


def _erase(job: Job, feats: Features, overlay: Features) -> np.ndarray:
    """Each geometry of ``feats`` minus the union of the ``overlay`` geometries it meets."""
    left, right = _pairs(feats, overlay, "intersects")
    n = len(feats)
    cutters = np.empty(n, dtype=object)
    if len(left):
        shapely.geometrycollections(overlay.geometries[right], indices=left, out=cutters)
    rows = np.flatnonzero(~shapely.is_missing(cutters))
    result = feats.geometries.copy()
    if len(rows):
        pairs = np.column_stack([feats.geometries[rows], cutters[rows]])
        result[rows] = job.map(pairs, lambda ab: shapely.difference(ab[:, 0], ab[:, 1]))
    return result


def _pairs(feats: Features, overlay: Features, predicate: str) -> tuple[np.ndarray, np.ndarray]:
    """(feature index, overlay index) pairs satisfying ``predicate``, sorted by feature."""
    tree = shapely.STRtree(overlay.geometries)
    left, right = tree.query(feats.geometries, predicate=predicate)
    order = np.lexsort((right, left))
    return left[order], right[order]


def _merge(a: dict[str, Any], b: dict[str, Any], a_id: Any, b_id: Any) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        merged[f"overlay_{key}" if key in a else key] = value
    merged["input_id"] = a_id
    merged["overlay_id"] = b_id
    return merged
