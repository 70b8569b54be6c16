"""Density-based clustering (DBSCAN) of points, vectorized with a grid-hashed neighbour search.

The in-process twin of ``honua_gp.dbscan`` (postgis tier), with the same answers: lon/lat
points are clustered in an azimuthal equidistant projection centred on the data (circular
mean longitude, mean latitude), so ``eps`` is metres on the ground; so are Web Mercator
points with the default "auto" method and projected points with "geodesic" (through
lon/lat); other projected points (and "planar") in the CRS's plane and unit; "degree" means
planar degrees.
A point is its own neighbour; a core point has at least ``min_points`` neighbours within
``eps`` (distance <= eps). Core points within eps of each other share a cluster; a border
point joins the cluster of its first core neighbour in input order (as PostGIS does).
Clusters are numbered 0, 1, ... in the order of their first member; noise, null and empty
geometries get -1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from executors.base import ExecutionContext, InvalidInput
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.inprocess.params import LinearUnit
from executors.spatialref import crs_for, ground_distances, transform_geometries, unit_factor

METHODS = ("auto", "planar", "geodesic")
NOISE = -1
_PAIRS_PER_CHUNK = 4_000_000
_OFFSETS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


def dbscan(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """The input features with an integer ``cluster_id`` (the ``result`` feature collection)."""
    job, feats = Job.start(ctx, params.features(inputs))
    eps_in = params.linear_unit(inputs, "eps", {"value": 100, "unit": "meter"})
    min_points = params.integer(inputs, "min_points", 5, minimum=1)
    method = params.choice(inputs, "method", METHODS, "auto")
    if eps_in.value < 0:
        raise InvalidInput("eps: must not be negative")

    geoms = feats.geometries
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    kinds = shapely.get_type_id(geoms[usable])
    if np.any(kinds != 0):
        raise InvalidInput("features: dbscan clusters points; other geometry types were given")
    points, eps = in_distance_plane(geoms[usable], eps_in, method, job, "eps")
    job.checkpoint(10, f"{len(points)} points")

    labels = np.full(len(geoms), NOISE, dtype=np.int64)
    labels[np.flatnonzero(usable)] = cluster_labels(
        shapely.get_coordinates(points), eps, min_points, job
    )
    return job.output(feats.with_field("cluster_id", labels.tolist(), "integer"))


def in_distance_plane(
    geoms: np.ndarray, distance: LinearUnit, method: str, job: Job, name: str
) -> tuple[np.ndarray, float]:
    """Geometries (in the working CRS) and a distance in the plane where that distance
    holds as ``method`` says (:func:`executors.spatialref.ground_distances`): on the ground,
    metres of an azimuthal equidistant projection centred on the data; otherwise the CRS's
    plane and unit ("degree": planar degrees of geographic data)."""
    if distance.is_angular:
        if not job.geographic:
            raise InvalidInput(
                f"{name}: a distance in degrees needs geographic data; EPSG:{job.work_srid} is projected"
            )
        return geoms, distance.value
    if ground_distances(method, job.work_srid):
        return to_local_metres(geoms, job.work_srid), distance.meters
    return geoms, distance.meters / unit_factor(job.work_srid)


def to_local_metres(geoms: np.ndarray, srid: int) -> np.ndarray:
    """Geometries in the azimuthal equidistant projection centred on them, as
    ``honua_gp._aeqd_for`` centres it: circular mean longitude and mean latitude of the
    centroids of their parts (for points, the points)."""
    if len(geoms) == 0:
        return geoms
    crs = crs_for(srid)
    lonlat = geoms
    if not crs.is_geographic:
        lonlat = transform_geometries(
            geoms, Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        )
    parts = shapely.get_parts(lonlat)
    xy = shapely.get_coordinates(shapely.centroid(parts[~shapely.is_empty(parts)]))
    lon = math.degrees(
        math.atan2(np.sin(np.radians(xy[:, 0])).mean(), np.cos(np.radians(xy[:, 0])).mean())
    )
    lat = float(xy[:, 1].mean())
    aeqd = CRS.from_proj4(
        f"+proj=aeqd +lat_0={lat:.8f} +lon_0={lon:.8f} +datum=WGS84 +units=m +no_defs"
    )
    return transform_geometries(geoms, Transformer.from_crs(crs, aeqd, always_xy=True))


def cluster_labels(
    xy: np.ndarray, eps: float, min_points: int, job: Job | None = None
) -> np.ndarray:
    """DBSCAN labels of coordinates ``xy`` (n, 2): 0.. by first member, -1 for noise."""
    n = len(xy)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    grid = _Grid(xy, eps)
    counts = np.zeros(n, dtype=np.int64)
    for i, _ in grid.pairs(job):
        counts += np.bincount(i, minlength=n)
    core = counts >= min_points

    parent = np.arange(n, dtype=np.int64)
    first_core = np.full(n, n, dtype=np.int64)  # lowest-index core neighbour of each point
    for i, j in grid.pairs(job):
        from_core = core[j]
        np.minimum.at(first_core, i[from_core], j[from_core])
        both = from_core & core[i] & (i < j)
        if both.any():
            union_pairs(parent, i[both], j[both])
    root = roots(parent)

    labels = np.full(n, -1, dtype=np.int64)
    labels[core] = root[core]
    border = ~core & (first_core < n)
    labels[border] = root[first_core[border]]
    return number_by_first_member(labels)


def number_by_first_member(labels: np.ndarray) -> np.ndarray:
    """Cluster labels renumbered 0, 1, ... in the order of each cluster's first member
    (negative labels, "in no cluster", become -1)."""
    labels = np.where(labels >= 0, labels, -1).astype(np.int64)
    clustered = np.flatnonzero(labels >= 0)
    if len(clustered) == 0:
        return labels
    keys, first, inverse = np.unique(labels[clustered], return_index=True, return_inverse=True)
    number = np.empty(len(keys), dtype=np.int64)
    number[np.argsort(clustered[first])] = np.arange(len(keys))
    labels[clustered] = number[inverse.reshape(-1)]
    return labels


def roots(parent: np.ndarray) -> np.ndarray:
    """Every node's root (pointer jumping until stable)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent[:] = grand


def union_pairs(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Merge the sets of each pair (a[k], b[k]); every root ends pointing at its set's minimum."""
    while True:
        ra, rb = roots(parent)[a], parent[b]
        differ = ra != rb
        if not differ.any():
            return
        ra, rb = ra[differ], rb[differ]
        low, high = np.minimum(ra, rb), np.maximum(ra, rb)
        np.minimum.at(parent, high, low)
        a, b = a[differ], b[differ]


class _Grid:
    """Points hashed on a grid of side eps: neighbours are in the 3x3 cells around."""

    def __init__(self, xy: np.ndarray, eps: float) -> None:
        self.xy = xy
        self.eps = eps
        # A hair over eps, so rounding cannot put two points eps apart two cells apart;
        # eps 0: only identical points are neighbours, any side will do.
        side = eps * (1 + 1e-9) if eps > 0 else 1.0
        cells = np.floor((xy - xy.min(axis=0)) / side).astype(np.int64)
        if cells.max(initial=0) > 2**30:
            raise InvalidInput("eps: too small for the extent of the points")
        self.width = int(cells[:, 1].max()) + 3
        keys = (cells[:, 0] + 1) * self.width + (cells[:, 1] + 1)
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.keys = keys
        # Candidate range of every point in each of the 9 cells around it.
        self.ranges = []
        for dx, dy in _OFFSETS:
            target = keys + dx * self.width + dy
            start = np.searchsorted(self.sorted_keys, target, side="left")
            end = np.searchsorted(self.sorted_keys, target, side="right")
            self.ranges.append((start, end))
        self.candidates = sum(end - start for start, end in self.ranges)

    def pairs(self, job: Job | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(i, j) index arrays of every pair within eps (i == j included), in chunks."""
        n = len(self.xy)
        total = np.cumsum(self.candidates)
        cuts = np.searchsorted(
            total, np.arange(_PAIRS_PER_CHUNK, total[-1], _PAIRS_PER_CHUNK), side="right"
        )
        edges = np.unique(np.concatenate([[0], np.clip(cuts, 1, n), [n]]))
        for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            if job is not None:
                job.checkpoint()
            i_parts, j_parts = [], []
            for start, end in self.ranges:
                s, e = start[lo:hi], end[lo:hi]
                count = e - s
                size = int(count.sum())
                if size == 0:
                    continue
                i = np.repeat(np.arange(lo, hi), count)
                offsets = np.arange(size) - np.repeat(np.cumsum(count) - count, count)
                j = self.order[np.repeat(s, count) + offsets]
                i_parts.append(i)
                j_parts.append(j)
            if not i_parts:
                continue
            i = np.concatenate(i_parts)
            j = np.concatenate(j_parts)
            d = np.hypot(self.xy[i, 0] - self.xy[j, 0], self.xy[i, 1] - self.xy[j, 1])
            near = d <= self.eps
            yield i[near], j[near]
