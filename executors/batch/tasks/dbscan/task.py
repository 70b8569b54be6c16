"""Density-based clustering (DBSCAN) of points (scipy cKDTree + connected components).

The batch twin of the catalog process ``dbscan`` (executors/inprocess/clustering.py and
honua_gp.dbscan): the same inputs and answers. By method (auto / planar / geodesic), points
are clustered on the ground (lon/lat, and Web Mercator under auto, through an azimuthal
equidistant projection centred on the data: circular mean longitude, mean latitude) or in the
CRS's plane and unit; "degree" means planar degrees of lon/lat data. A point is its own
neighbour; a core point has at least min_points neighbours within eps (distance <= eps); core
points within eps of each other share a cluster; a border point joins the cluster of its
first core neighbour in input order. Clusters are numbered 0, 1, ... in the order of their
first member; noise, null and empty geometries get -1.
"""

import math

import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

DEFAULT_SRID = 4326
METHODS = ("auto", "planar", "geodesic")
WEB_MERCATOR_SRIDS = frozenset({3857, 900913, 102100, 102113, 3785})
NOISE = -1
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
    fc = inputs.get("features")
    items, srid = _feature_list(fc, bad)
    geoms = _geometries(items, bad)
    work = ctx.process_srid or srid
    out_srid = ctx.out_srid or srid
    geoms = _reproject(geoms, srid, work, bad)
    crs = _crs(work, bad)

    eps_value, eps_unit = _linear_unit(inputs.get("eps"), bad)
    min_points = inputs.get("min_points")
    if min_points is None:
        min_points = 5
    if isinstance(min_points, bool) or not isinstance(min_points, int | float) or min_points != int(min_points):
        raise bad("min_points: expected an integer")
    if min_points < 1:
        raise bad("min_points: must be at least 1")
    method = inputs.get("method") or "auto"
    if method not in METHODS:
        raise bad(f"method: expected one of {', '.join(METHODS)}")
    if eps_value < 0:
        raise bad("eps: must not be negative")

    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if np.any(shapely.get_type_id(geoms[usable]) != 0):
        raise bad("features: dbscan clusters points; other geometry types were given")
    xy = shapely.get_coordinates(geoms[usable])
    if eps_unit == "degree":
        if not crs.is_geographic:
            raise bad(f"eps: a distance in degrees needs geographic data; EPSG:{work} is projected")
        eps = eps_value
    elif _ground_distances(method, work, crs):
        xy, eps = _local_metres(xy, crs), eps_value * LINEAR_UNITS[eps_unit]
    else:
        eps = eps_value * LINEAR_UNITS[eps_unit] / float(crs.axis_info[0].unit_conversion_factor)
    ctx.progress(10, f"{len(xy)} points")

    labels = np.full(len(geoms), NOISE, dtype=np.int64)
    labels[np.flatnonzero(usable)] = cluster_labels(xy, eps, int(min_points))
    clusters = int(labels.max(initial=-1)) + 1
    ctx.message("info", f"{clusters} clusters, {int((labels[usable] < 0).sum())} noise points")

    if out_srid != work:
        geoms = _reproject(geoms, work, out_srid, bad)
    if out_srid != srid:
        written = [None if g is None else shapely.geometry.mapping(g) for g in geoms.tolist()]
    else:
        written = [item.get("geometry") for item in items]
    features = []
    for item, geometry, label in zip(items, written, labels.tolist(), strict=True):
        feature = {"type": "Feature", "geometry": geometry, "properties": {**(item.get("properties") or {}), "cluster_id": label}}
        if item.get("id") is not None:
            feature = {"type": "Feature", "id": item["id"], **{k: feature[k] for k in ("geometry", "properties")}}
        features.append(feature)
    out = {"type": "FeatureCollection", "srid": out_srid, "features": features}
    if isinstance(fc.get("fields"), list):
        out["fields"] = [f for f in fc["fields"] if f.get("name") != "cluster_id"]
        out["fields"].append({"name": "cluster_id", "type": "integer"})
    return {"result": out}


def cluster_labels(xy, eps, min_points):
    """DBSCAN labels of coordinates ``xy`` (n, 2): 0.. by first member, -1 for noise."""
    n = len(xy)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    # Candidates a hair beyond eps, then the in-process tier's own test (hypot <= eps), so
    # both tiers agree on pairs exactly eps apart.
    pairs = cKDTree(xy).query_pairs(eps * (1 + 1e-9) if eps > 0 else 0.0, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    near = np.hypot(xy[i, 0] - xy[j, 0], xy[i, 1] - xy[j, 1]) <= eps
    i, j = i[near], j[near]
    counts = 1 + np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    core = counts >= min_points

    both = core[i] & core[j]
    graph = coo_matrix((np.ones(int(both.sum())), (i[both], j[both])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    labels = np.full(n, -1, dtype=np.int64)
    labels[core] = component[core]
    # A border point joins the cluster of its lowest-index core neighbour.
    first_core = np.full(n, n, dtype=np.int64)
    a = np.concatenate([i, j])
    b = np.concatenate([j, i])
    from_core = core[b]
    np.minimum.at(first_core, a[from_core], b[from_core])
    border = ~core & (first_core < n)
    labels[border] = labels[first_core[border]]
    return number_by_first_member(labels)


def number_by_first_member(labels):
    """Labels renumbered 0, 1, ... in the order of each cluster's first member."""
    labels = np.where(labels >= 0, labels, -1).astype(np.int64)
    clustered = np.flatnonzero(labels >= 0)
    if len(clustered) == 0:
        return labels
    keys, first, inverse = np.unique(labels[clustered], return_index=True, return_inverse=True)
    number = np.empty(len(keys), dtype=np.int64)
    number[np.argsort(clustered[first])] = np.arange(len(keys))
    labels[clustered] = number[inverse.reshape(-1)]
    return labels


# -- inputs and frames ----------------------------------------------------------------------


def _feature_list(value, bad):
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
    elif kind == "Point" or kind == "MultiPoint":
        items = [{"type": "Feature", "geometry": value, "properties": {}}]
    else:
        raise bad(f"features: expected a FeatureCollection, Feature or geometry, got {kind!r}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad(f"features: feature {i} is not a GeoJSON Feature object")
    return items, srid


def _geometries(items, bad):
    geoms = []
    for i, item in enumerate(items):
        geometry = item.get("geometry")
        try:
            geoms.append(None if geometry is None else shapely.geometry.shape(geometry))
        except Exception as exc:  # shapely raises several types for bad GeoJSON
            raise bad(f"features: feature {i} has an invalid geometry ({exc})") from None
    return np.asarray(geoms + [None], dtype=object)[:-1]


def _linear_unit(value, bad):
    if value is None:
        value = {"value": 100, "unit": "meter"}
    if isinstance(value, bool):
        raise bad("eps: expected {'value', 'unit'}")
    if isinstance(value, int | float):
        value = {"value": value, "unit": "meter"}
    if not isinstance(value, dict) or "value" not in value:
        raise bad("eps: expected {'value': <number>, 'unit': <unit>}")
    unit = value.get("unit", "meter")
    if unit not in LINEAR_UNITS:
        raise bad(f"eps: unknown unit {unit!r}; use one of {', '.join(LINEAR_UNITS)}")
    number = value["value"]
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise bad("eps: expected a finite number")
    return float(number), unit


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


def _ground_distances(method, srid, crs):
    """executors.spatialref.ground_distances: whether a length holds on the ground."""
    if int(srid) in WEB_MERCATOR_SRIDS:
        return method != "planar"
    return method == "geodesic" or crs.is_geographic


def _local_metres(xy, crs):
    """Points in the azimuthal equidistant projection centred on them (circular mean
    longitude, mean latitude of the points in lon/lat)."""
    if len(xy) == 0:
        return xy
    lonlat = xy
    if not crs.is_geographic:
        tr = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        lonlat = np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
    lon = math.degrees(
        math.atan2(np.sin(np.radians(lonlat[:, 0])).mean(), np.cos(np.radians(lonlat[:, 0])).mean())
    )
    lat = float(lonlat[:, 1].mean())
    aeqd = CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.8f} +lon_0={lon:.8f} +datum=WGS84 +units=m +no_defs")
    tr = Transformer.from_crs(crs, aeqd, always_xy=True)
    return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
