"""Inverse distance weighted interpolation onto a grid of square cells (scipy cKDTree).

The batch twin of the catalog process ``idw`` (executors/inprocess/gridding.py and
honua_gp.idw): the same inputs, grid (the extent's north-west corner, rows north to south,
columns west to east, at most max_cells cells), frames (the CRS's plane for projected data;
for lon/lat data an azimuthal equidistant projection centred on the samples: circular mean
longitude, mean latitude) and values (a sample at a centre gives its own value; no sample
within search_radius gives null).
"""

import math

import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

DEFAULT_SRID = 4326
DEFAULT_MAX_CELLS = 250_000
CENTRES_PER_CHUNK = 50_000
LINEAR_UNITS = {
    "meter": 1.0,
    "kilometer": 1000.0,
    "centimeter": 0.01,
    "millimeter": 0.001,
    "decimeter": 0.1,
    "foot": 0.3048,
    "us_survey_foot": 1200.0 / 3937.0,
    "inch": 0.0254,
    "yard": 0.9144,
    "mile": 1609.344,
    "nautical_mile": 1852.0,
    "point": 0.0254 / 72.0,
    "degree": float("nan"),
}


def run(inputs, ctx):
    bad = ctx.InvalidInput
    geoms, props, srid = _features(inputs.get("features"), bad)
    work = ctx.process_srid or srid
    out_srid = ctx.out_srid or srid
    geoms = _reproject(geoms, srid, work, bad)
    crs = _crs(work, bad)

    field = inputs.get("value_field")
    if not isinstance(field, str):
        raise bad("value_field: expected the name of a numeric property")
    cell_value, cell_unit = _linear_unit(inputs, "cell_size", bad)
    power = _number(inputs.get("power", 2.0) if inputs.get("power") is not None else 2.0, "power", bad)
    if not 0 <= power <= 10:
        raise bad("power: expected a number from 0 to 10")
    radius = None
    if inputs.get("search_radius") is not None:
        radius = _frame_length(*_linear_unit(inputs, "search_radius", bad), crs, "search_radius", bad)
    k = _integer(inputs.get("max_neighbors"), 12, "max_neighbors", 1, 10_000, bad)
    extent = None if inputs.get("extent") is None else _extent(inputs["extent"], work, bad)
    cell = _frame_length(cell_value, cell_unit, crs, "cell_size", bad)
    limit = ctx.limits.get("max_cells")
    limit = DEFAULT_MAX_CELLS if limit is None else int(limit)

    values = _numeric_values(props, field)
    if not np.isfinite(values).any():
        raise bad(f"value_field: no feature has a numeric {field!r}")
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & np.isfinite(values)
    if not usable.any():
        raise bad("idw needs at least one sample with a geometry and a numeric value")
    samples = shapely.get_coordinates(shapely.centroid(geoms[usable]))
    vals = values[usable]
    forward, inverse = _frame(samples, crs)
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
        raise bad(
            f"the grid would have {cols * rows} cells ({cols} columns x {rows} rows), more "
            f"than the limit of {limit}; use a larger cell size or a smaller extent"
        )
    ctx.progress(10, f"{len(xy)} samples, {cols} x {rows} cells")

    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    rf, cf = r.astype(np.float64), c.astype(np.float64)
    centres = np.column_stack([xmin + (cf + 0.5) * cell, ymax - (rf + 0.5) * cell])
    out = np.empty(len(centres))
    tree = cKDTree(xy)
    for start in range(0, len(centres), CENTRES_PER_CHUNK):
        stop = min(len(centres), start + CENTRES_PER_CHUNK)
        ctx.progress(10 + int(70 * start / len(centres)))
        out[start:stop] = idw_values(tree, vals, centres[start:stop], power, k, radius)

    x0, x1 = xmin + cf * cell, xmin + (cf + 1) * cell
    y0, y1 = ymax - (rf + 1) * cell, ymax - rf * cell
    ring = np.stack([np.column_stack([x0, x0, x1, x1, x0]), np.column_stack([y0, y1, y1, y0, y0])], axis=-1)
    if inverse is not None:
        ring = inverse(ring.reshape(-1, 2)).reshape(ring.shape)
    polygons = np.asarray(shapely.polygons(ring), dtype=object).reshape(-1)
    polygons = _reproject(polygons, work, out_srid, bad)
    ctx.progress(90, f"{len(polygons)} cells")
    coords = shapely.get_coordinates(polygons).reshape(-1, 5, 2).tolist()
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring_coords]},
            "properties": {"grid_column": col, "grid_row": row, "value": None if math.isnan(v) else v},
        }
        for ring_coords, col, row, v in zip(coords, c.tolist(), r.tolist(), out.tolist(), strict=True)
    ]
    fields = [
        {"name": "grid_column", "type": "integer"},
        {"name": "grid_row", "type": "integer"},
        {"name": "value", "type": "number"},
    ]
    return {"result": {"type": "FeatureCollection", "srid": out_srid, "features": features, "fields": fields}}


def idw_values(tree, values, centres, power, k, radius):
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


# -- inputs ---------------------------------------------------------------------------------


def _features(value, bad):
    """A feature_collection value (a single Feature or geometry too): geometries, properties
    and its EPSG code (GeoJSON is EPSG:4326 unless an srid is given)."""
    if not isinstance(value, dict):
        raise bad("features: expected a feature collection object")
    srid = value.get("srid")
    try:
        srid = DEFAULT_SRID if srid is None else int(srid)
    except (TypeError, ValueError):
        raise bad("features: srid must be an integer EPSG code") from None
    kind = value.get("type")
    if kind == "FeatureCollection":
        items = value.get("features")
        if not isinstance(items, list):
            raise bad("features: 'features' must be a list")
    elif kind == "Feature":
        items = [value]
    elif isinstance(kind, str) and "coordinates" in value or kind == "GeometryCollection":
        items = [{"type": "Feature", "geometry": value, "properties": {}}]
    else:
        raise bad(f"features: expected a FeatureCollection, Feature or geometry, got {kind!r}")
    geoms, props = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad(f"features: feature {i} is not a GeoJSON Feature object")
        geometry = item.get("geometry")
        try:
            geoms.append(None if geometry is None else shapely.geometry.shape(geometry))
        except Exception as exc:  # shapely raises several types for bad GeoJSON
            raise bad(f"features: feature {i} has an invalid geometry ({exc})") from None
        p = item.get("properties")
        props.append(p if isinstance(p, dict) else {})
    return np.asarray(geoms + [None], dtype=object)[:-1], props, srid


def _numeric_values(props, name):
    out = np.full(len(props), np.nan)
    for k, p in enumerate(props):
        value = p.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[k] = float(value)
    return out


def _number(value, name, bad):
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(f"{name}: expected a finite number")
    return float(value)


def _integer(value, default, name, minimum, maximum, bad):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise bad(f"{name}: expected an integer")
    if not minimum <= value <= maximum:
        raise bad(f"{name}: expected an integer from {minimum} to {maximum}")
    return int(value)


def _linear_unit(inputs, name, bad):
    value = inputs.get(name)
    if value is None:
        raise bad(f"missing input '{name}'")
    if isinstance(value, bool):
        raise bad(f"{name}: expected {{'value', 'unit'}}")
    if isinstance(value, int | float):
        value = {"value": value, "unit": "meter"}
    if not isinstance(value, dict) or "value" not in value:
        raise bad(f"{name}: expected {{'value': <number>, 'unit': <unit>}}")
    unit = value.get("unit", "meter")
    if unit not in LINEAR_UNITS:
        raise bad(f"{name}: unknown unit {unit!r}; use one of {', '.join(LINEAR_UNITS)}")
    return _number(value["value"], name, bad), unit


def _extent(value, srid, bad):
    """A bbox input as [xmin, ymin, xmax, ymax] in EPSG ``srid``."""
    if not isinstance(value, dict) or not isinstance(value.get("bbox"), list | tuple):
        raise bad("extent: expected {'bbox': [minx, miny, maxx, maxy], 'srid': ...}")
    box = [_number(v, "extent", bad) for v in value["bbox"]]
    if len(box) == 6:
        box = [box[0], box[1], box[3], box[4]]
    if len(box) != 4:
        raise bad("extent: a bbox has 4 numbers")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise bad("extent: bbox minimum must be below maximum")
    box_srid = value.get("srid", DEFAULT_SRID)
    if box_srid != srid:
        tr = Transformer.from_crs(_crs(box_srid, bad), _crs(srid, bad), always_xy=True)
        box = list(tr.transform_bounds(box[0], box[1], box[2], box[3], densify_pts=21))
    if not (box[0] < box[2] and box[1] < box[3]) or not all(map(math.isfinite, box)):
        raise bad("extent: bbox minimum must be below maximum")
    return box


# -- frames ---------------------------------------------------------------------------------


def _crs(srid, bad):
    try:
        crs = CRS.from_epsg(int(srid))
    except Exception:  # pyproj's CRSError, or a value that is no EPSG code
        raise bad(f"unknown spatial reference EPSG:{srid}") from None
    if not (crs.is_geographic or crs.is_projected):
        raise bad(f"EPSG:{srid} is neither geographic nor projected")
    return crs


def _reproject(geoms, src, dst, bad):
    if src == dst or len(geoms) == 0:
        return geoms
    tr = Transformer.from_crs(_crs(src, bad), _crs(dst, bad), always_xy=True)
    out = np.asarray(
        shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))), dtype=object
    )
    coords, index = shapely.get_coordinates(out, return_index=True)
    rows = ~np.isfinite(coords).all(axis=1)
    if rows.any():
        raise bad(f"feature {int(index[rows][0])} cannot be represented in EPSG:{dst} (outside its area of use)")
    return out


def _frame_length(value, unit, crs, name, bad):
    """A positive length in the working frame: metres for lon/lat data, the CRS's unit for
    projected data."""
    if unit == "degree":
        raise bad(f"{name}: give a length (meter, foot...), not degrees")
    if not value > 0:
        raise bad(f"{name}: must be positive")
    meters = value * LINEAR_UNITS[unit]
    if crs.is_geographic:
        return meters
    return meters / float(crs.axis_info[0].unit_conversion_factor)


def _frame(lonlat, crs):
    """Forward and inverse maps to the working frame (identity for projected data)."""
    if not crs.is_geographic:
        return (lambda xy: xy), None
    lon = math.degrees(
        math.atan2(np.sin(np.radians(lonlat[:, 0])).mean(), np.cos(np.radians(lonlat[:, 0])).mean())
    )
    lat = float(lonlat[:, 1].mean())
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.8f} +lon_0={lon:.8f} +datum=WGS84 +units=m +no_defs")
    to_local = Transformer.from_crs(crs, local, always_xy=True)
    from_local = Transformer.from_crs(local, crs, always_xy=True)
    return (
        lambda xy: np.column_stack(to_local.transform(xy[:, 0], xy[:, 1])),
        lambda xy: np.column_stack(from_local.transform(xy[:, 0], xy[:, 1])),
    )
