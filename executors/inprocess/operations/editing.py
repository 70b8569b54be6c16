"""Editing: cut by lines, reshape by a line, trim/extend line ends to a boundary."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import substring

from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.inprocess import params
from executors.inprocess.job import CHUNK_SIZE, Job
from executors.inprocess.params import LinearUnit
from executors.inprocess.parts import collect, explode, keep_dimension
from executors.localframes import frame_for
from executors.spatialref import unit_factor


def cut(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Split polygons and lines by the ``cutter`` lines; each piece becomes a feature.

    Polygons: faces of the polygon's boundary noded with the cutter lines inside it (a
    cutter that does not cross a polygon from side to side leaves it whole). Lines: split
    where they cross or touch a cutter (portions lying along a cutter are removed). Points
    are returned unchanged. Pieces keep the source properties plus ``input_id``. Computed
    planar in the working CRS.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    cutter = job.to_work(params.features(inputs, "cutter"))
    blade = shapely.union_all(keep_dimension(cutter.geometries, 1))
    if blade is None or shapely.is_empty(blade):
        raise InvalidInput("cutter: no lines to cut with")
    shapely.prepare(blade)
    geoms = feats.geometries
    dims = shapely.get_dimensions(geoms)
    hit = shapely.intersects(geoms, blade)
    job.checkpoint(10, None)
    pieces = [np.asarray(geoms[~hit], dtype=object)]
    owners = [np.flatnonzero(~hit)]
    areal = np.flatnonzero(hit & (dims == 2))
    if len(areal):
        faces, owner = _faces(job, geoms[areal], blade)
        pieces.append(faces)
        owners.append(areal[owner])
    linear = np.flatnonzero(hit & (dims == 1))
    if len(linear):
        split = job.map(geoms[linear], lambda g: shapely.difference(g, blade))
        parts, owner = explode(split)
        pieces.append(parts)
        owners.append(linear[owner])
    points = np.flatnonzero(hit & (dims == 0))
    pieces.append(geoms[points])
    owners.append(points)
    all_pieces = np.concatenate(pieces)
    all_owners = np.concatenate(owners).astype(np.intp)
    order = np.argsort(all_owners, kind="stable")
    all_pieces, all_owners = all_pieces[order], all_owners[order]
    source = feats.take(all_owners)
    props = [{**p, "input_id": fid} for p, fid in zip(source.properties, source.ids, strict=True)]
    out = Features(all_pieces, props, [None] * len(all_pieces), feats.srid)
    return job.output(out)


def _faces(
    job: Job, polygons: np.ndarray, blade: shapely.Geometry
) -> tuple[np.ndarray, np.ndarray]:
    """Faces of each polygon cut by ``blade`` and the polygon row each face belongs to."""
    face_parts: list[np.ndarray] = []
    face_owner: list[np.ndarray] = []
    for start in range(0, len(polygons), CHUNK_SIZE):
        job.checkpoint()
        chunk = polygons[start : start + CHUNK_SIZE]
        inside = keep_dimension(shapely.intersection(chunk, blade), 1)
        linework = np.where(
            shapely.is_missing(inside),
            shapely.boundary(chunk),
            shapely.union(shapely.boundary(chunk), inside),
        )
        faces = shapely.polygonize(np.asarray(linework, dtype=object).reshape(-1, 1), axis=1)
        parts, owner = explode(np.asarray(faces, dtype=object).reshape(-1))
        inner = shapely.within(shapely.point_on_surface(parts), chunk[owner])
        face_parts.append(parts[inner])
        face_owner.append(owner[inner] + start)
    return np.concatenate(face_parts), np.concatenate(face_owner)


def reshape(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Replace part of each line or polygon boundary the ``reshaping_line`` crosses.

    Lines: crossed twice or more, the stretch between the first and last crossing (taken
    along the reshaping line) is replaced by the reshaping line's stretch between them;
    crossed once, the line keeps its longer side of the crossing and continues along the
    longer side of the reshaping line. Polygons: with L the reshaping line between its
    first and last crossing of the boundary, areas enclosed between L and the outside of
    the polygon are added, the result is split by the parts of L inside the original
    polygon and the largest piece is kept (so a line drawn inside cuts off the smaller
    side, a line drawn outside adds the area it encloses). Multi-part features are reshaped
    part by part. Features the line does not touch are unchanged. Computed planar in the
    working CRS.
    """
    job, feats = Job.start(ctx, params.features(inputs))
    line, srid = params.geometry(inputs, "reshaping_line")
    line = shapely.line_merge(job.geometry_to_work(line, srid))
    if not isinstance(line, LineString) or line.is_empty:
        raise InvalidInput("reshaping_line: expected a single connected line")
    result = feats.geometries.copy()
    touched = np.flatnonzero(shapely.intersects(feats.geometries, line))
    if len(touched) == 0:
        ctx.message("warning", "the reshaping line touches no feature; nothing was changed")
    # An interactive edit touches few features and shapely has no array form of it:
    # one small set of GEOS calls per touched feature.
    for k, i in enumerate(touched.tolist()):
        if k % 500 == 0:
            job.checkpoint()
        result[i] = _reshape_any(feats.geometries[i], line)
    return job.output(feats.replace(result))


def _reshape_any(geom: shapely.Geometry, line: LineString) -> shapely.Geometry:
    kind = geom.geom_type
    if kind == "LineString":
        return _reshape_line(geom, line)
    if kind == "Polygon":
        return _reshape_polygon(geom, line)
    if kind in ("MultiLineString", "MultiPolygon"):
        parts = [_reshape_any(part, line) if part.intersects(line) else part for part in geom.geoms]
        flat = [p for part in parts for p in getattr(part, "geoms", [part])]
        return type(geom)(flat)
    return geom


def _crossings(target: shapely.Geometry, line: LineString) -> np.ndarray:
    """Positions along ``line`` of its contacts with ``target`` (sorted, unique)."""
    contact = shapely.intersection(target, line)
    points = shapely.points(np.unique(shapely.get_coordinates(contact), axis=0))
    return np.unique(shapely.line_locate_point(line, points))


def _reshape_line(target: LineString, line: LineString) -> LineString:
    positions = _crossings(target, line)
    if len(positions) == 0:
        return target
    length = target.length
    if len(positions) >= 2:
        r1, r2 = float(positions[0]), float(positions[-1])
        middle = _coords(substring(line, r1, r2))
        s1 = target.project(line.interpolate(r1))
        s2 = target.project(line.interpolate(r2))
        if s1 > s2:
            s1, s2 = s2, s1
            middle = middle[::-1]
        coords = _coords(substring(target, 0, s1)) + middle + _coords(substring(target, s2, length))
        return LineString(_dedupe(coords))
    r = float(positions[0])
    at = line.interpolate(r)
    s = target.project(at)
    ahead = _coords(substring(line, r, line.length))
    behind = _coords(substring(line, 0, r))[::-1]
    tail = ahead if len(ahead) > 1 and line.length - r >= r else behind
    if s >= length - s:
        coords = _coords(substring(target, 0, s)) + tail
    else:
        coords = tail[::-1] + _coords(substring(target, s, length))
    return LineString(_dedupe(coords))


def _reshape_polygon(polygon: Polygon, line: LineString) -> shapely.Geometry:
    positions = _crossings(polygon.boundary, line)
    if len(positions) < 2:
        return polygon
    reshaper = substring(line, float(positions[0]), float(positions[-1]))
    shell = Polygon(polygon.exterior)
    faces, _ = explode(
        np.array([shapely.polygonize([polygon.boundary.union(reshaper)])], dtype=object)
    )
    outside = faces[~shapely.contains(shell, shapely.point_on_surface(faces))]
    grown = shapely.union_all(np.concatenate([[polygon], outside]))
    blade = keep_dimension(np.array([shapely.intersection(reshaper, polygon)], dtype=object), 1)[0]
    if blade is None:
        return grown
    pieces, _ = explode(np.array([shapely.polygonize([grown.boundary.union(blade)])], dtype=object))
    pieces = pieces[shapely.within(shapely.point_on_surface(pieces), grown)]
    if len(pieces) == 0:
        return grown
    return pieces[int(np.argmax(shapely.area(pieces)))]


def _coords(geom: shapely.Geometry) -> list[tuple[float, ...]]:
    return [tuple(c) for c in shapely.get_coordinates(geom).tolist()]


def _dedupe(coords: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    out = [coords[0]]
    for c in coords[1:]:
        if c != out[-1]:
            out.append(c)
    return out


TRIM_EXTEND_MODES = ("both", "extend", "trim")


def trim_extend(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Trim dangling line ends and extend short ones, up to ``distance``.

    Trim: an end that runs past its last crossing with a boundary by less than
    ``distance`` is cut back to the crossing. Extend: an end that touches no boundary is
    prolonged along its last segment to the first boundary within ``distance``. Boundaries
    are the ``boundary`` features (polygon edges count) or, without them, the other input
    lines. Lon/lat data is edited in one transverse Mercator frame centred on the data
    (regional data; accuracy drops beyond ~1,000 km east-west).
    """
    job, feats = Job.start(ctx, params.features(inputs))
    distance = params.linear_unit(inputs, "distance")
    mode = params.choice(inputs, "mode", TRIM_EXTEND_MODES, "both")
    if distance.value < 0:
        raise InvalidInput("distance: must not be negative")
    boundary_input = params.optional_features(inputs, "boundary")
    parts, owner = explode(feats.geometries)
    is_line = shapely.get_type_id(parts) == 1
    lines, line_owner = parts[is_line], owner[is_line]
    if boundary_input is None:
        edges, edge_line = lines, np.arange(len(lines))
    else:
        boundary = job.to_work(boundary_input)
        b_parts, _ = explode(boundary.geometries)
        areal = shapely.get_dimensions(b_parts) == 2
        rings, _ = explode(np.asarray(shapely.boundary(b_parts[areal]), dtype=object))
        edges = np.concatenate([b_parts[~areal], rings])
        edge_line = np.full(len(edges), -1)
    job.checkpoint(10, None)
    d, frame = _edit_distance(job, distance, np.concatenate([lines, edges]))
    if frame is not None:
        lines_f, edges_f = frame.forward(lines), frame.forward(edges)
    else:
        lines_f, edges_f = lines, edges
    edited = _trim_extend(lines_f, edges_f, edge_line, d, mode)
    if frame is not None:
        edited = frame.inverse(edited)
    result = feats.geometries.copy()
    regrouped = collect(edited, line_owner, len(feats))
    rows = np.unique(line_owner)
    result[rows] = regrouped[rows]
    return job.output(feats.replace(result))


def _edit_distance(job: Job, distance: LinearUnit, geoms: np.ndarray) -> tuple[float, Any]:
    if distance.is_angular:
        if not job.geographic:
            raise InvalidInput("distance: degrees need geographic data")
        return distance.value, None
    if job.geographic:
        return distance.meters, frame_for(geoms, job.work_srid)
    return distance.meters / unit_factor(job.work_srid), None


def _trim_extend(
    lines: np.ndarray, edges: np.ndarray, edge_line: np.ndarray, d: float, mode: str
) -> np.ndarray:
    n = len(lines)
    if n == 0 or len(edges) == 0:
        return lines
    tree = shapely.STRtree(edges)
    length = shapely.length(lines)
    eps = max(d, float(length.max())) * 1e-9
    trimmed = np.zeros((n, 2), dtype=bool)
    if mode in ("both", "trim"):
        lines, trimmed = _trim(lines, edges, edge_line, tree, length, d, eps)
    if mode in ("both", "extend"):
        lines = _extend(lines, edges, edge_line, tree, d, eps, trimmed)
    return lines


def _trim(
    lines: np.ndarray,
    edges: np.ndarray,
    edge_line: np.ndarray,
    tree: shapely.STRtree,
    length: np.ndarray,
    d: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(lines)
    li, ei = tree.query(lines, predicate="intersects")
    other = edge_line[ei] != li
    li, ei = li[other], ei[other]
    contact = shapely.intersection(lines[li], edges[ei])
    coords, pair = shapely.get_coordinates(contact, return_index=True)
    at = shapely.line_locate_point(lines[li[pair]], shapely.points(coords))
    row = li[pair]
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, row, at)
    np.maximum.at(hi, row, at)
    cut_start = (lo > eps) & (lo < d)
    cut_end = (length - hi > eps) & (length - hi < d) & np.isfinite(hi)
    start = np.where(cut_start, lo, 0.0)
    stop = np.where(cut_end, hi, length)
    rows = np.flatnonzero(cut_start | cut_end)
    out = lines.copy()
    if len(rows):
        out[rows] = _substrings(lines[rows], start[rows], stop[rows])
    return out, np.column_stack([cut_start, cut_end])


def _substrings(lines: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The part of each line between distances ``start`` and ``stop`` along it."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    step = np.zeros(len(coords))
    same = idx[1:] == idx[:-1]
    step[1:] = np.where(same, np.hypot(*(coords[1:] - coords[:-1]).T), 0.0)
    run = np.cumsum(step)
    first = np.ones(len(coords), dtype=bool)
    first[1:] = ~same
    along = run - np.maximum.accumulate(np.where(first, run, 0.0))
    inside = (along > start[idx]) & (along < stop[idx])
    a = shapely.get_coordinates(shapely.line_interpolate_point(lines, start))
    b = shapely.get_coordinates(shapely.line_interpolate_point(lines, stop))
    rows = np.arange(len(lines))
    all_coords = np.concatenate([a, coords[inside], b])
    all_idx = np.concatenate([rows, idx[inside], rows])
    all_at = np.concatenate([start, along[inside], stop])
    order = np.lexsort((all_at, all_idx))
    return np.asarray(shapely.linestrings(all_coords[order], indices=all_idx[order]), dtype=object)


def _extend(
    lines: np.ndarray,
    edges: np.ndarray,
    edge_line: np.ndarray,
    tree: shapely.STRtree,
    d: float,
    eps: float,
    trimmed: np.ndarray,
) -> np.ndarray:
    n = len(lines)
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(idx, minlength=n)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    ok = counts >= 2
    origin = np.concatenate([coords[first], coords[last]])
    toward = np.concatenate(
        [coords[np.minimum(first + 1, last)], coords[np.maximum(last - 1, first)]]
    )
    direction = origin - toward
    norm = np.hypot(direction[:, 0], direction[:, 1])
    line_of = np.concatenate([np.arange(n), np.arange(n)])
    usable = np.concatenate([ok, ok]) & (norm > 0) & ~np.concatenate([trimmed[:, 0], trimmed[:, 1]])
    unit = direction / np.where(norm > 0, norm, 1.0)[:, None]
    origin_pts = shapely.points(origin)
    oi, ei = tree.query(origin_pts, predicate="dwithin", distance=eps)
    touching = np.zeros(2 * n, dtype=bool)
    touching[oi[edge_line[ei] != line_of[oi]]] = True
    usable &= ~touching
    ends = np.flatnonzero(usable)
    if len(ends) == 0 or d <= 0:
        return lines
    rays = shapely.linestrings(np.stack([origin[ends], origin[ends] + unit[ends] * d], axis=1))
    ri, ei = tree.query(rays, predicate="intersects")
    other = edge_line[ei] != line_of[ends[ri]]
    ri, ei = ri[other], ei[other]
    reach = shapely.distance(origin_pts[ends[ri]], shapely.intersection(rays[ri], edges[ei]))
    best = np.full(len(ends), np.inf)
    np.minimum.at(best, ri, np.where(reach > eps, reach, np.inf))
    hit = np.isfinite(best)
    new = coords.copy()
    which = ends[hit]
    target = origin[which] + unit[which] * best[hit][:, None]
    slot = np.concatenate([first, last])[which]
    new[slot] = target
    changed = np.unique(line_of[which])
    out = lines.copy()
    rebuilt = shapely.linestrings(new, indices=idx)
    out[changed] = np.asarray(rebuilt, dtype=object)[changed]
    return out
