"""Measures: areas, lengths and nearest distances, in a requested unit, true on the ground."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from pyproj import Geod

from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.geodesic import geod_for, geodesic_areas, geodesic_lengths
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.localframes import Frame, Geodetic, aeqd_groups
from executors.spatialref import crs_for, geodetic_transformer, transform_geometries, unit_factor
from executors.units import LINEAR_UNITS

AREA_UNITS: dict[str, float] = {
    "square_meter": 1.0,
    "square_kilometer": 1e6,
    "square_centimeter": 1e-4,
    "square_millimeter": 1e-6,
    "hectare": 1e4,
    "are": 100.0,
    "square_foot": 0.3048**2,
    "square_us_survey_foot": (1200.0 / 3937.0) ** 2,
    "square_inch": 0.0254**2,
    "square_yard": 0.9144**2,
    "acre": 4046.8564224,
    "square_mile": 1609.344**2,
    "square_nautical_mile": 1852.0**2,
}
MEASURE_METHODS = ("geodesic", "planar")


def areas(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Each feature with an ``area`` property (0 for points and lines).

    ``geodesic`` (default): on the ellipsoid, whatever the CRS. ``planar``: in the plane of a
    projected working CRS (geographic data is always measured geodesically).
    """
    job, feats = Job.start(ctx, params.features(inputs))
    unit = params.choice(inputs, "unit", tuple(AREA_UNITS), "square_meter")
    method = params.choice(inputs, "method", MEASURE_METHODS, "geodesic")
    if method == "planar" and not job.geographic:
        factor = unit_factor(job.work_srid) ** 2
        values = job.map_values(feats.geometries, lambda g: shapely.area(g) * factor)
    else:
        values = job.map_values(_lonlat(feats), lambda g: geodesic_areas(g, job.work_srid))
    values = values / AREA_UNITS[unit]
    return job.output(feats.with_field("area", _numbers(values, feats), "number"))


def lengths(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Each feature with a ``length`` property (perimeter for polygons, 0 for points).

    ``degree`` as the unit gives planar lon/lat lengths of geographic data.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    unit = params.choice(inputs, "unit", tuple(LINEAR_UNITS), "meter")
    method = params.choice(inputs, "method", MEASURE_METHODS, "geodesic")
    if unit == "degree":
        _require_geographic(job)
        values = job.map_values(feats.geometries, shapely.length)
    elif method == "planar" and not job.geographic:
        factor = unit_factor(job.work_srid) / LINEAR_UNITS[unit]
        values = job.map_values(feats.geometries, lambda g: shapely.length(g) * factor)
    else:
        values = job.map_values(_lonlat(feats), lambda g: geodesic_lengths(g, job.work_srid))
        values = values / LINEAR_UNITS[unit]
    return job.output(feats.with_field("length", _numbers(values, feats), "number"))


def distance(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Each feature with the distance to its nearest overlay feature.

    Adds ``distance`` (in ``unit``; null with no overlay feature within ``search_radius``),
    ``near_id`` (the overlay feature's id) and ``near_index`` (its position). Geodesic
    (default, and always for geographic data): nearest candidates are found in azimuthal
    equidistant frames and the reported value is the ellipsoidal distance between the two
    closest points. ``planar``: in a projected working CRS's plane.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    overlay = job.to_work(params.features(inputs, "overlay"))
    unit = params.choice(inputs, "unit", tuple(LINEAR_UNITS), "meter")
    method = params.choice(inputs, "method", MEASURE_METHODS, "geodesic")
    radius = inputs.get("search_radius")
    if unit == "degree":
        _require_geographic(job)
        near, dist = _planar_nearest(feats.geometries, overlay.geometries)
    elif method == "planar" and not job.geographic:
        near, dist = _planar_nearest(feats.geometries, overlay.geometries)
        dist = dist * unit_factor(job.work_srid) / LINEAR_UNITS[unit]
    else:
        near, dist = _geodesic_nearest(job, _lonlat(feats), _lonlat(overlay))
        dist = dist / LINEAR_UNITS[unit]
    if radius is not None:
        limit = params.linear_unit(inputs, "search_radius")
        if limit.is_angular != (unit == "degree"):
            raise InvalidInput("search_radius: use degrees only together with unit 'degree'")
        bound = limit.value if limit.is_angular else limit.meters / LINEAR_UNITS[unit]
        far = ~(dist <= bound)
        near[far] = -1
        dist[far] = np.nan
    found = near >= 0
    near_ids = [
        overlay.ids[j] if ok else None for j, ok in zip(near.tolist(), found.tolist(), strict=True)
    ]
    out = feats.with_field("distance", _numbers(dist, feats), "number")
    out = out.with_field("near_id", near_ids, "string")
    out = out.with_field("near_index", [j if j >= 0 else None for j in near.tolist()], "integer")
    return job.output(out)


def _planar_nearest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    near = np.full(len(a), -1, dtype=np.int64)
    dist = np.full(len(a), np.nan)
    if len(a) == 0 or len(b) == 0:
        return near, dist
    tree = shapely.STRtree(b)
    (ia, ib), d = tree.query_nearest(a, return_distance=True, all_matches=False)
    near[ia] = ib
    dist[ia] = d
    return near, dist


def _geodesic_nearest(job: Job, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``b`` for each ``a`` by ground distance, per azimuthal equidistant cell frame.

    Only the overlay features that can be nearest are projected into each cell's frame: the
    planar lon/lat nearest gives an upper bound of the ground distance, and the candidates
    are those within that bound of the cell (a conservative lon/lat box).
    """
    near = np.full(len(a), -1, dtype=np.int64)
    dist = np.full(len(a), np.nan)
    present = np.flatnonzero(~shapely.is_missing(b) & ~shapely.is_empty(b))
    if len(a) == 0 or len(present) == 0:
        return near, dist
    geod, geo = geod_for(job.work_srid)
    pool = np.asarray(b[present], dtype=object)
    lonlat_tree = shapely.STRtree(pool)
    groups = list(aeqd_groups(a, job.work_srid))
    for k, group in enumerate(groups):
        job.checkpoint(int(90 * k / len(groups)) if len(groups) > 1 else None, None)
        members = a[group.members]
        fa = group.frame.forward(members)
        ia, ib = lonlat_tree.query_nearest(members, all_matches=False)
        first = _ground(group.frame, geod, geo, fa[ia], _project(group.frame, pool[ib]))
        bound = float(np.nanmax(first)) if np.isfinite(first).any() else np.inf
        candidates = lonlat_tree.query(_reach(members, bound, geo))
        fb = _project(group.frame, pool[candidates])
        finite = _finite(fb)
        candidates, fb = candidates[finite], fb[finite]
        if len(candidates) == 0:
            continue
        tree = shapely.STRtree(fb)
        ia, ib = tree.query_nearest(fa, all_matches=False)
        rows = group.members[ia]
        near[rows] = present[candidates[ib]]
        dist[rows] = _ground(group.frame, geod, geo, fa[ia], fb[ib])
    return near, dist


def _project(frame: Frame, geoms: np.ndarray) -> np.ndarray:
    return transform_geometries(geoms, frame.transformer)


def _ground(frame: Frame, geod: Geod, geo: Geodetic, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Ellipsoidal distance between the closest points of aligned pairs in a frame."""
    if len(fa) == 0:
        return np.empty(0)
    ends = shapely.get_coordinates(shapely.shortest_line(fa, fb))
    lon, lat = frame.transformer.transform(ends[:, 0], ends[:, 1], direction="INVERSE")
    lon = np.asarray(lon).reshape(-1, 2) * geo.degrees_per_unit
    lat = np.asarray(lat).reshape(-1, 2) * geo.degrees_per_unit
    _, _, d = geod.inv(lon[:, 0], lat[:, 0], lon[:, 1], lat[:, 1])
    return np.asarray(d)


def _reach(members: np.ndarray, meters: float, geo: Geodetic) -> shapely.Geometry:
    """A lon/lat box surely containing everything within ``meters`` of ``members``."""
    minx, miny, maxx, maxy = (
        float(v) * geo.degrees_per_unit for v in shapely.total_bounds(members)
    )
    dlat = meters / 110_500.0  # fewer metres per degree of latitude nowhere
    south, north = max(miny - dlat, -90.0), min(maxy + dlat, 90.0)
    widest = max(abs(south), abs(north))
    if not np.isfinite(dlat) or widest >= 89.0:
        west, east = -540.0, 540.0
    else:
        dlon = meters / (111_000.0 * math.cos(math.radians(widest)))
        west, east = minx - dlon, maxx + dlon
        if west < -180.0 or east > 180.0:
            west, east = -540.0, 540.0
    unit = 1.0 / geo.degrees_per_unit
    return shapely.box(west * unit, south * unit, east * unit, north * unit)


def _lonlat(feats: Features) -> np.ndarray:
    """Geometries as lon/lat of the working CRS's geographic base."""
    if crs_for(feats.srid).is_geographic:
        return feats.geometries
    return transform_geometries(feats.geometries, geodetic_transformer(feats.srid))


def _finite(geoms: np.ndarray) -> np.ndarray:
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    ok = np.ones(len(geoms), dtype=bool)
    ok[index[~np.isfinite(coords).all(axis=1)]] = False
    return ok


def _numbers(values: np.ndarray, feats: Features) -> list[float | None]:
    """Floats for JSON; None for null geometries and missing values."""
    missing = shapely.is_missing(feats.geometries)
    return [
        None if (m or v != v) else v for v, m in zip(values.tolist(), missing.tolist(), strict=True)
    ]


def _require_geographic(job: Job) -> None:
    if not job.geographic:
        raise InvalidInput(
            f"unit 'degree' needs geographic data; EPSG:{job.work_srid} is projected"
        )
