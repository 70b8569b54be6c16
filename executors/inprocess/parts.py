"""Vectorized part bookkeeping: explode geometries, regroup parts, union per group."""

from __future__ import annotations

import numpy as np
import shapely

_COLLECTION_TYPES = (4, 5, 6, 7)
_MULTI_BY_DIMENSION = {
    0: shapely.multipoints,
    1: shapely.multilinestrings,
    2: shapely.multipolygons,
}
# OverlayNG accepts GeometryCollection operands from GEOS 3.13: union(collection, empty)
# is then a vectorized per-row unary union.
_GC_OVERLAY = shapely.geos_version >= (3, 13, 0)


def explode(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Single-part geometries of every (nested) collection and the row each came from."""
    parts = np.asarray(geoms, dtype=object)
    owner = np.arange(len(parts))
    present = ~shapely.is_missing(parts) & ~shapely.is_empty(parts)
    parts, owner = parts[present], owner[present]
    while len(parts) and np.isin(shapely.get_type_id(parts), _COLLECTION_TYPES).any():
        parts, index = shapely.get_parts(parts, return_index=True)
        owner = owner[index]
    return np.asarray(parts, dtype=object), owner


def collect(parts: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Regroup single parts into ``n`` rows: one part stays single, several become a multi
    geometry (a collection when dimensions are mixed), none gives None."""
    out = np.empty(n, dtype=object)
    if len(parts) == 0:
        return out
    order = np.argsort(owner, kind="stable")
    parts, owner = parts[order], owner[order]
    counts = np.bincount(owner, minlength=n)
    single = counts[owner] == 1
    out[owner[single]] = parts[single]
    multi_parts, multi_owner = parts[~single], owner[~single]
    if len(multi_parts) == 0:
        return out
    dims = shapely.get_dimensions(multi_parts)
    lo = np.full(n, 9)
    hi = np.full(n, -1)
    np.minimum.at(lo, multi_owner, dims)
    np.maximum.at(hi, multi_owner, dims)
    mixed = lo[multi_owner] != hi[multi_owner]
    for dim, make in _MULTI_BY_DIMENSION.items():
        sel = ~mixed & (dims == dim)
        if sel.any():
            buf = np.empty(n, dtype=object)
            make(multi_parts[sel], indices=multi_owner[sel], out=buf)
            rows = np.unique(multi_owner[sel])
            out[rows] = buf[rows]
    if mixed.any():
        buf = np.empty(n, dtype=object)
        shapely.geometrycollections(multi_parts[mixed], indices=multi_owner[mixed], out=buf)
        rows = np.unique(multi_owner[mixed])
        out[rows] = buf[rows]
    return out


def keep_dimension(geoms: np.ndarray, dims: np.ndarray | int) -> np.ndarray:
    """Each geometry reduced to its parts of dimension ``dims`` (per row); None if none."""
    n = len(geoms)
    parts, owner = explode(geoms)
    want = np.broadcast_to(np.asarray(dims), (n,))
    keep = shapely.get_dimensions(parts) == want[owner]
    return collect(parts[keep], owner[keep], n)


def union_groups(geoms: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Union of the geometries of each group (``group[i]`` in 0..n_groups-1)."""
    present = ~shapely.is_missing(geoms)
    geoms, group = geoms[present], group[present]
    out = np.empty(n_groups, dtype=object)
    if len(geoms) == 0:
        return out
    order = np.argsort(group, kind="stable")
    geoms, group = geoms[order], group[order]
    if _GC_OVERLAY:
        buf = np.empty(n_groups, dtype=object)
        shapely.geometrycollections(geoms, indices=group, out=buf)
        rows = np.unique(group)
        out[rows] = shapely.union(buf[rows], shapely.GeometryCollection())
        return out
    cuts = np.flatnonzero(np.diff(group)) + 1
    for members, key in zip(np.split(geoms, cuts), group[np.r_[0, cuts]].tolist(), strict=True):
        out[key] = shapely.union_all(members)
    return out


def single_or_none(geoms: np.ndarray) -> np.ndarray:
    """Empty geometries replaced by None."""
    out = np.asarray(geoms, dtype=object).copy()
    out[shapely.is_empty(out)] = None
    return out
