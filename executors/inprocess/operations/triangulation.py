"""Point-set structures: Voronoi (Thiessen) polygons and Delaunay triangulation.

Geographic data is triangulated in one transverse Mercator frame centred on the data, so
cells and triangles follow ground distances for regional data (continental extents bend).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.inprocess.parts import union_groups
from executors.localframes import Frame, frame_for
from executors.spatialref import reproject


def voronoi(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """One Voronoi cell per input feature, carrying its properties.

    Points generate cells (multipoints: the union of their parts' cells; other geometries:
    their centroid). Cells are clipped to ``extent`` or, without it, to the input's bounding
    box grown by 10 % on each side. Coincident points share a cell.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    extent = params.bbox(inputs, "extent")
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
    unique, back = np.unique(coords, axis=0, return_inverse=True)
    back = back.reshape(-1)
    job.checkpoint(20, f"{len(unique)} distinct points")
    if len(unique) == 1:
        cells = np.array([clip], dtype=object)
    else:
        diagram = shapely.voronoi_polygons(
            shapely.multipoints(unique), extend_to=clip, ordered=True
        )
        cells = np.asarray(shapely.get_parts(diagram), dtype=object)
    job.checkpoint(70, "cells built")
    cells = np.asarray(shapely.intersection(cells, clip), dtype=object)[back]
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
    """Delaunay triangles (or their edges with ``only_edges``) of all input vertices."""
    job, feats = Job.start(ctx, params.features(inputs))
    only_edges = params.boolean(inputs, "only_edges", False)
    coords = shapely.get_coordinates(feats.geometries)
    if len(np.unique(coords, axis=0)) < 3:
        raise InvalidInput("features: a triangulation needs at least 3 distinct vertices")
    points = shapely.multipoints(coords)
    frame = frame_for(feats.geometries, job.work_srid) if job.geographic else None
    if frame is not None:
        points = frame.forward(np.array([points], dtype=object))[0]
    result = shapely.delaunay_triangles(points, only_edges=only_edges)
    parts = np.asarray(shapely.get_parts(result), dtype=object)
    if frame is not None:
        parts = frame.inverse(parts)
    props = [{} for _ in range(len(parts))]
    return job.output(Features(parts, props, [None] * len(parts), feats.srid))
