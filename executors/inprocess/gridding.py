"""Hexagon-grid aggregation (hexbin) and inverse distance weighted interpolation onto a grid
(idw), vectorized with numpy and scipy's cKDTree.

The in-process twins of ``honua_gp.hexbin`` and ``honua_gp.idw`` (postgis tier), with the
same grids and answers: the same working frames (the CRS's plane for projected data; for
lon/lat data a Lambert azimuthal equal-area projection (hexbin) or an azimuthal equidistant
one (idw) centred on the data: circular mean longitude, mean latitude), the same floating
point expressions for cell addresses and vertices, and PostGIS's rules:

- hexbin: ST_HexagonGrid's flat-topped hexagons of edge ``cell_size`` (cell (i, j) centred
  at (1.5 s i, sqrt(3) s (j + (i mod 2) / 2)) from the frame's origin); a feature counts at
  its centroid (computed in the input's coordinates) in the hexagon of the nearest centre
  (ties: the western column, then the northern row); with ``include_empty`` the hexagons
  ST_HexagonGrid makes over the points' extent are added with count 0.
- idw: cells of side ``cell_size`` from the extent's north-west corner; a cell's value is
  sum(v / d^p) / sum(1 / d^p) over its ``max_neighbors`` nearest samples within
  ``search_radius``; a sample at the centre gives its own value (the mean of those there);
  no sample within the radius gives null.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from executors.attributes import numeric_values
from executors.base import ExecutionContext, InvalidInput
from executors.geodata import Features
from executors.grids import max_cells
from executors.inprocess import params
from executors.inprocess.job import Job
from executors.postgis.registry import extent_in
from executors.spatialref import crs_for, unit_factor

# ST_HexagonGrid's constants: sqrt(3)/2 as PostGIS writes it, the unit hexagon's ring.
H = 0.8660254037844387
HEX_X = np.array([-1.0, -0.5, 0.5, 1.0, 0.5, -0.5, -1.0])
HEX_Y = np.array([0.0, -0.5, -0.5, 0.0, 0.5, 0.5, 0.0])
_CENTRES_PER_CHUNK = 50_000

Coords = Callable[[np.ndarray], np.ndarray]


# -- hexbin ---------------------------------------------------------------------------------


def hexbin(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Hexagons with the count (and sum and mean of ``sum_field``) of the features in each."""
    job, feats = Job.start(ctx, params.features(inputs))
    size_in = params.linear_unit(inputs, "cell_size")
    include_empty = params.boolean(inputs, "include_empty", False)
    field = params.string(inputs, "sum_field")
    limit = max_cells(ctx.limits)
    size = _frame_length(size_in, job.work_srid, "cell_size")

    geoms = feats.geometries
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    values = numeric_values(feats, field)[usable] if field else None
    centroids = shapely.get_coordinates(shapely.centroid(geoms[usable]))
    columns = ["grid_column", "grid_row", "count"] + (["sum", "mean"] if field else [])
    if len(centroids) == 0:
        return job.output(_new_features([], [], columns, job.work_srid))
    forward, inverse = _frame(centroids, job.work_srid, "laea")
    xy = forward(centroids)
    job.checkpoint(20, f"{len(xy)} points")

    w, h = 1.5 * size, size * 2 * H
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    if max(abs(lo[0]), abs(hi[0])) / w > 2e9 or max(abs(lo[1]), abs(hi[1])) / h > 2e9:
        raise InvalidInput(
            f"cell size {size!r} is too small for coordinates this far from the grid origin"
        )
    if include_empty:
        cells = (math.floor(hi[0] / w) - math.floor(lo[0] / w) + 2) * (
            math.floor(hi[1] / h) - math.floor(lo[1] / h) + 2
        )
        if cells > limit:
            raise InvalidInput(
                f"the hexagon grid would have about {cells} cells, more than the limit of "
                f"{limit}; use a larger cell size"
            )

    i, j = hex_cells(xy, size)
    keys, inverse_idx = np.unique(np.column_stack([i, j]), axis=0, return_inverse=True)
    inverse_idx = inverse_idx.reshape(-1)
    counts = np.bincount(inverse_idx, minlength=len(keys))
    if include_empty:
        grid = hexagon_grid(size, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))
        occupied = {(a, b) for a, b in keys.tolist()}
        empty = np.array([c for c in grid if c not in occupied], dtype=np.int64).reshape(-1, 2)
        keys = np.vstack([keys, empty])
        counts = np.concatenate([counts, np.zeros(len(empty), dtype=np.int64)])
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    rows: list[list[Any]] = [
        keys[order, 0].tolist(),
        keys[order, 1].tolist(),
        counts[order].tolist(),
    ]
    if values is not None:
        given = np.isfinite(values)
        sums = np.bincount(inverse_idx[given], weights=values[given], minlength=len(keys))
        summed = np.bincount(inverse_idx[given], minlength=len(keys))
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(summed > 0, sums / np.maximum(summed, 1), np.nan)
        rows.append(sums[order].tolist())
        rows.append([None if math.isnan(m) else m for m in means[order].tolist()])
    job.checkpoint(80, f"{len(keys)} hexagons")
    polygons = hexagons(size, keys[order, 0], keys[order, 1], inverse)
    return job.output(_new_features(polygons, rows, columns, job.work_srid))


def hex_cells(xy: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """The (i, j) of ST_HexagonGrid's hexagon holding each point: the nearest centre among
    the two candidate columns (ties: the western one; in a column, the northern row)."""
    x, y = xy[:, 0], xy[:, 1]
    w, h = 1.5 * size, size * 2 * H
    best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    i0 = np.floor(x / w).astype(np.int64)
    for i in (i0, i0 + 1):
        odd = (i & 1).astype(np.float64)
        j = np.floor(y / h - 0.5 * odd + 0.5).astype(np.int64)
        cx = size * (1.5 * i.astype(np.float64))
        cy = h * (j.astype(np.float64) + 0.5 * odd)
        d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy)
        if best is None:
            best = (i, j, d2)
        else:
            west = best[2] <= d2
            best = (np.where(west, best[0], i), np.where(west, best[1], j), d2)
    assert best is not None
    return best[0], best[1]


def hexagons(size: float, i: np.ndarray, j: np.ndarray, inverse: Coords | None) -> np.ndarray:
    """ST_Hexagon(size, i, j) polygons (vertex for vertex), mapped by ``inverse``."""
    i = np.asarray(i, dtype=np.int64)[:, None]
    j = np.asarray(j, dtype=np.int64)[:, None]
    x = size * (1.5 * i + HEX_X)
    y = (size * 2 * H) * (j + 0.5 * (np.abs(i) % 2) + HEX_Y)
    ring = np.stack([x, y], axis=-1)
    if inverse is not None and len(ring):
        ring = inverse(ring.reshape(-1, 2)).reshape(ring.shape)
    return np.asarray(shapely.polygons(ring), dtype=object).reshape(-1)


def hexagon_grid(size: float, box: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """The (i, j) that ST_HexagonGrid(size, ST_MakeEnvelope(*box)) returns, in its order
    (the envelope's bounds as PostGIS caches them: rounded outwards to float4)."""
    xmin, ymin = _float4_down(box[0]), _float4_down(box[1])
    xmax, ymax = _float4_up(box[2]), _float4_up(box[3])
    col_width, row_height = 1.5 * size, size * 2 * H
    column_min = math.floor(xmin / col_width)
    if xmin - column_min * col_width > size:
        column_min += 1
    column_max = math.ceil(xmax / col_width)
    if column_max * col_width - xmax > size:
        column_max -= 1
    out: list[tuple[int, int]] = []
    for i in range(column_min, column_max + 1):
        if i % 2:
            first, last = math.floor(ymin / row_height), math.floor(ymax / row_height)
        else:
            first = math.floor(ymin / row_height + 0.5)
            last = math.floor(ymax / row_height + 0.5)
        out.extend((i, j) for j in range(first, last + 1))
    return out


def _float4_down(value: float) -> float:
    rounded = np.float32(value)
    if float(rounded) <= value:
        return float(rounded)
    return float(np.nextafter(rounded, np.float32(-np.inf)))


def _float4_up(value: float) -> float:
    rounded = np.float32(value)
    if float(rounded) >= value:
        return float(rounded)
    return float(np.nextafter(rounded, np.float32(np.inf)))


# -- idw ------------------------------------------------------------------------------------


def idw(inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
    """Grid cells (polygons) with the value interpolated at their centres."""
    job, feats = Job.start(ctx, params.features(inputs))
    field = params.string(inputs, "value_field")
    if field is None:
        raise InvalidInput("value_field: expected the name of a numeric property")
    cell_in = params.linear_unit(inputs, "cell_size")
    power = params.number(inputs, "power", 2.0)
    if not 0 <= power <= 10:
        raise InvalidInput("power: expected a number from 0 to 10")
    radius = None
    if inputs.get("search_radius") is not None:
        radius_in = params.linear_unit(inputs, "search_radius")
        radius = _frame_length(radius_in, job.work_srid, "search_radius")
    k = params.integer(inputs, "max_neighbors", 12, minimum=1, maximum=10_000)
    extent = None if inputs.get("extent") is None else extent_in(inputs["extent"], job.work_srid)
    cell = _frame_length(cell_in, job.work_srid, "cell_size")
    limit = max_cells(ctx.limits)

    values = numeric_values(feats, field)
    if not np.isfinite(values).any():
        raise InvalidInput(f"value_field: no feature has a numeric {field!r}")
    geoms = feats.geometries
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & np.isfinite(values)
    if not usable.any():
        raise InvalidInput("idw needs at least one sample with a geometry and a numeric value")
    samples = shapely.get_coordinates(shapely.centroid(geoms[usable]))
    vals = values[usable]
    forward, inverse = _frame(samples, job.work_srid, "aeqd")
    xy = forward(samples)

    if extent is None:
        (xmin, ymin), (xmax, ymax) = xy.min(axis=0), xy.max(axis=0)
    else:
        outline = shapely.box(*extent, ccw=False)
        if inverse is not None:
            step = min(extent[2] - extent[0], extent[3] - extent[1]) / 16
            outline = shapely.segmentize(outline, step)
        corners = forward(shapely.get_coordinates(outline))
        (xmin, ymin), (xmax, ymax) = corners.min(axis=0), corners.max(axis=0)
    cols = max(1, math.ceil((xmax - xmin) / cell))
    rows = max(1, math.ceil((ymax - ymin) / cell))
    if cols * rows > limit:
        raise InvalidInput(
            f"the grid would have {cols * rows} cells ({cols} columns x {rows} rows), more "
            f"than the limit of {limit}; use a larger cell size or a smaller extent"
        )
    job.checkpoint(10, f"{len(xy)} samples, {cols} x {rows} cells")

    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    rf, cf = r.astype(np.float64), c.astype(np.float64)
    centres = np.column_stack([xmin + (cf + 0.5) * cell, ymax - (rf + 0.5) * cell])
    out = np.empty(len(centres))
    tree = cKDTree(xy)
    for start in range(0, len(centres), _CENTRES_PER_CHUNK):
        stop = min(len(centres), start + _CENTRES_PER_CHUNK)
        job.checkpoint(10 + int(70 * start / len(centres)))
        out[start:stop] = idw_values(tree, vals, centres[start:stop], power, k, radius)

    x0, x1 = xmin + cf * cell, xmin + (cf + 1) * cell
    y0, y1 = ymax - (rf + 1) * cell, ymax - rf * cell
    ring = np.stack(
        [np.column_stack([x0, x0, x1, x1, x0]), np.column_stack([y0, y1, y1, y0, y0])], axis=-1
    )
    if inverse is not None:
        ring = inverse(ring.reshape(-1, 2)).reshape(ring.shape)
    polygons = np.asarray(shapely.polygons(ring), dtype=object).reshape(-1)
    columns = [c.tolist(), r.tolist(), [None if math.isnan(v) else v for v in out.tolist()]]
    job.checkpoint(90, f"{len(polygons)} cells")
    return job.output(
        _new_features(polygons, columns, ["grid_column", "grid_row", "value"], job.work_srid)
    )


def idw_values(
    tree: cKDTree,
    values: np.ndarray,
    centres: np.ndarray,
    power: float,
    k: int,
    radius: float | None,
) -> np.ndarray:
    """The IDW value at each centre (NaN: no sample within ``radius``)."""
    kk = min(k, tree.n)
    # cKDTree's bound is strict, ST_DWithin's inclusive: query a hair beyond, then cut.
    bound = math.inf if radius is None else float(np.nextafter(radius, math.inf))
    dist, idx = tree.query(centres, k=list(range(1, kk + 1)), distance_upper_bound=bound)
    if radius is not None:
        far = dist > radius
        dist[far], idx[far] = math.inf, tree.n
    found = idx < tree.n
    v = values[np.minimum(idx, tree.n - 1)]
    zero = found & (dist == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(found, 1.0 / dist**power, 0.0)
        weighted = np.where(found, v / dist**power, 0.0)
        out = weighted.sum(axis=1) / weights.sum(axis=1)
        at_sample = zero.any(axis=1)
        out[at_sample] = (np.where(zero, v, 0.0).sum(axis=1) / zero.sum(axis=1))[at_sample]
    out[~found.any(axis=1)] = np.nan
    return out


# -- frames ---------------------------------------------------------------------------------


def _frame_length(value: params.LinearUnit, srid: int, name: str) -> float:
    """A positive length in the working frame: metres for lon/lat data (the local frame),
    the CRS's unit for projected data."""
    if value.is_angular:
        raise InvalidInput(f"{name}: give a length (meter, foot...), not degrees")
    if not value.value > 0:
        raise InvalidInput(f"{name}: must be positive")
    if crs_for(srid).is_geographic:
        return value.meters
    return value.meters / unit_factor(srid)


def _frame(lonlat: np.ndarray, srid: int, projection: str) -> tuple[Coords, Coords | None]:
    """Forward and inverse maps to the working frame: identity for projected data, else
    ``projection`` (laea | aeqd) centred on the points as honua_gp._laea_for/_aeqd_for."""
    crs = crs_for(srid)
    if not crs.is_geographic:
        return (lambda xy: xy), None
    lon = math.degrees(
        math.atan2(np.sin(np.radians(lonlat[:, 0])).mean(), np.cos(np.radians(lonlat[:, 0])).mean())
    )
    lat = float(lonlat[:, 1].mean())
    local = CRS.from_proj4(
        f"+proj={projection} +lat_0={lat:.8f} +lon_0={lon:.8f} +datum=WGS84 +units=m +no_defs"
    )
    to_local = Transformer.from_crs(crs, local, always_xy=True)
    from_local = Transformer.from_crs(local, crs, always_xy=True)

    def forward(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_local.transform(xy[:, 0], xy[:, 1]))

    def inverse(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(from_local.transform(xy[:, 0], xy[:, 1]))

    return forward, inverse


def _new_features(
    geoms: np.ndarray | list[Any], columns: list[list[Any]], names: list[str], srid: int
) -> Features:
    types = {"grid_column": "integer", "grid_row": "integer", "count": "integer"}
    n = len(geoms)
    props = [{name: col[k] for name, col in zip(names, columns, strict=True)} for k in range(n)]
    return Features(
        np.asarray(geoms, dtype=object).reshape(-1),
        props,
        [None] * n,
        srid,
        [{"name": name, "type": types.get(name, "number")} for name in names],
    )
