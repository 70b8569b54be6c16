"""Point-set structures: Voronoi (Thiessen) polygons and Delaunay triangulation.

Geographic data is triangulated in one transverse Mercator frame centred on the data, so
cells and triangles follow ground distances for regional data (continental extents bend).

Sites are snapped first (:func:`snap_sites`): points within the snapping distance of each
other are one site, placed at the first of them in input order. The snapping distance is
the ``tolerance`` input, but never less than 1e-9 of the diagonal of the points' bounding
box nor 1e-13 of their largest absolute coordinate (both in the working plane). Points that
differ only by float noise (records of one address one ULP apart) would otherwise split one
cell along an arbitrary line or make zero-area triangles. The postgis voronoi
(``honua_voronoi_v2.sql``) snaps by the same rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.inprocess import params
from executors.inprocess.clustering import cluster_labels
from executors.inprocess.job import Job
from executors.inprocess.parts import union_groups
from executors.localframes import Frame, frame_for
from executors.spatialref import reproject, unit_factor

# The least snapping distance: relative to the diagonal of the points' bounding box (far
# below any real separation of sites) and to their largest absolute coordinate (~450 ULPs:
# coordinates written with 15 significant digits differ by up to ~10 ULPs).
SNAP_RELATIVE = 1e-9
SNAP_MAGNITUDE = 1e-13
_NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]


def voronoi(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """One Voronoi cell per input feature, carrying its properties.

    Points generate cells (multipoints: the union of their parts' cells; other geometries:
    their centroid). Cells are clipped to ``extent`` or, without it, to the input's bounding
    box grown by 10 % on each side. Points closer than the snapping distance (see the
    module docstring) share a cell.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    extent = params.bbox(inputs, "extent")
    tolerance = _tolerance(inputs, job)
    geoms = feats.geometries
    kind = shapely.get_type_id(geoms)
    seeds = np.where(np.isin(kind, (0, 4)), geoms, shapely.centroid(geoms))
    pts, owner = shapely.get_parts(seeds, return_index=True)
    keep = ~shapely.is_empty(pts)
    pts, owner = pts[keep], owner[keep]
    if len(pts) == 0:
        raise InvalidInput("features: no points to build Voronoi cells from")
    frame = frame_for(geoms, job.work_srid) if job.geographic else None
    clip = _clip_area(job, frame, pts, extent)
    if frame is not None:
        pts = frame.forward(pts)
    coords = shapely.get_coordinates(pts)
    site_of, first = snap_sites(coords, tolerance)
    sites = coords[first]
    job.checkpoint(20, f"{len(sites)} distinct sites")
    if len(sites) == 1:
        cells = np.array([clip], dtype=object)
    else:
        diagram = shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=clip, ordered=True)
        cells = np.asarray(shapely.get_parts(diagram), dtype=object)
    job.checkpoint(70, "cells built")
    cells = np.asarray(shapely.intersection(cells, clip), dtype=object)[site_of]
    per_feature = union_groups(cells, owner, len(feats))
    if frame is not None:
        per_feature = frame.inverse(per_feature)
    return job.output(feats.replace(per_feature))


def _clip_area(
    job: Job, frame: Frame | None, pts: np.ndarray, extent: tuple[shapely.Geometry, int] | None
) -> shapely.Geometry:
    if extent is not None:
        area, srid = extent
        area = reproject(
            np.array([shapely.segmentize(area, _step(area))], dtype=object), srid, job.work_srid
        )
        region = area[0]
        if frame is not None:
            region = frame.forward(
                np.array([shapely.segmentize(region, _step(region))], dtype=object)
            )[0]
        return region
    target = frame.forward(pts) if frame is not None else pts
    minx, miny, maxx, maxy = shapely.total_bounds(target)
    pad = max(maxx - minx, maxy - miny) * 0.1 or 1.0
    return shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)


def _step(area: shapely.Geometry) -> float:
    minx, miny, maxx, maxy = area.bounds
    return max(maxx - minx, maxy - miny) / 64.0


def delaunay(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Delaunay triangles (or their edges with ``only_edges``) of all input vertices, snapped
    as the module docstring says (a triangle's corners are input vertices)."""
    job, feats = Job.start(ctx, params.features(inputs))
    only_edges = params.boolean(inputs, "only_edges", False)
    tolerance = _tolerance(inputs, job)
    points = shapely.points(shapely.get_coordinates(feats.geometries))
    frame = frame_for(feats.geometries, job.work_srid) if job.geographic else None
    if frame is not None:
        points = frame.forward(points)
    coords = shapely.get_coordinates(points)
    _, first = snap_sites(coords, tolerance)
    if len(first) < 3:
        raise InvalidInput("features: a triangulation needs at least 3 distinct vertices")
    result = shapely.delaunay_triangles(shapely.multipoints(coords[first]), only_edges=only_edges)
    parts = np.asarray(shapely.get_parts(result), dtype=object)
    if frame is not None:
        parts = frame.inverse(parts)
    props: list[dict[str, Any]] = [{} for _ in range(len(parts))]
    return job.output(Features(parts, props, [None] * len(parts), feats.srid))


def _tolerance(inputs: dict[str, Any], job: Job) -> float:
    """The ``tolerance`` input in working-plane units (metres of the local frame for lon/lat
    data, the CRS's unit for projected data); 0 when absent."""
    if inputs.get("tolerance") is None:
        return 0.0
    value = params.linear_unit(inputs, "tolerance")
    if value.is_angular:
        raise InvalidInput("tolerance: give a length (meter, foot...), not degrees")
    if value.value < 0:
        raise InvalidInput("tolerance: must not be negative")
    return value.meters if job.geographic else value.meters / unit_factor(job.work_srid)


def snap_sites(xy: np.ndarray, tolerance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Points grouped into sites: ``(site_of, first)`` with ``site_of[i]`` the site of point
    ``i`` (sites numbered in the order of their first point) and ``first[k]`` the index of
    site ``k``'s first point, which is where the site lies.

    Points within the snapping distance ``max(tolerance, SNAP_RELATIVE * diagonal,
    SNAP_MAGNITUDE * largest absolute coordinate)`` of each other are one site, transitively
    (the connected components of "distance <= snapping distance", as
    ``ST_ClusterDBSCAN(geom, eps, 1)``), so sites end up more than the snapping distance
    apart. Only points with another point in their grid square or the 8 around it (side: the
    snapping distance) are compared.
    """
    n = len(xy)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = high - low
    snap = max(
        float(tolerance),
        SNAP_RELATIVE * float(np.hypot(span[0], span[1])),
        SNAP_MAGNITUDE * float(np.abs(np.concatenate([low, high])).max()),
    )
    if snap == 0.0:  # all points identical
        return np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.int64)
    # A hair over the distance so that rounding cannot put two close points two squares apart
    # (as cluster_labels' grid); at most ~1e9 squares a side (the diagonal term).
    cells = np.floor((xy - low) / (snap * (1 + 1e-9))).astype(np.int64)
    width = int(cells[:, 1].max()) + 3
    keys = (cells[:, 0] + 1) * width + (cells[:, 1] + 1)
    # Per occupied square (sorted, so each lookup's needles are sorted too): another point
    # in it or in a square around it.
    occupied, square_of, count = np.unique(keys, return_inverse=True, return_counts=True)
    crowded = count > 1
    for dx, dy in _NEIGHBOURS:
        target = occupied + (dx * width + dy)
        at = np.minimum(np.searchsorted(occupied, target), len(occupied) - 1)
        crowded |= occupied[at] == target
    crowded = crowded[square_of.reshape(-1)]
    lead = np.arange(n)  # index of the first point of each point's site
    close = np.flatnonzero(crowded)
    if len(close):
        labels = cluster_labels(xy[close], snap, 1)
        _, first_of_label = np.unique(labels, return_index=True)
        lead[close] = close[first_of_label][labels]
    first, site_of = np.unique(lead, return_inverse=True)
    return site_of.reshape(-1), first
