"""Esri geometry JSON <-> GeoJSON and spatial references, without a database or shapely.

Reading Esri JSON (geometries, spatial references) is ``controlplane.services.esrijson``,
shared with the control plane's feature-service reader; this module adds the writing side
(GeoJSON -> Esri geometry JSON, spatialReference JSON) and the reprojection of output
values for ``outSR``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from controlplane import exceptions as errors
from controlplane.services.esrijson import (
    ENVELOPE,
    MULTIPOINT,
    POINT,
    POLYGON,
    POLYLINE,
    WEB_MERCATOR,
    WEB_MERCATOR_ALIASES,
    esri_kind,
    esri_to_geojson,
    nesting_budget,
    normalize_srid,
    oriented,
    rings_to_polygons,
    signed_area,
    srid_from_sr,
    srid_from_wkt,
)

__all__ = [
    "ENVELOPE", "MULTIPOINT", "POINT", "POLYGON", "POLYLINE", "WEB_MERCATOR", "WEB_MERCATOR_ALIASES",
    "esri_kind", "esri_to_geojson", "nesting_budget", "normalize_srid", "rings_to_polygons", "signed_area",
    "srid_from_sr", "srid_from_wkt", "sr_json", "geojson_kind", "choose_kind", "geojson_to_esri",
    "has_dimension", "oriented", "reproject_geometry", "reproject_bbox",
]

ESRI_WEB_MERCATOR = 102100

GEOJSON_KIND = {
    "Point": POINT,
    "MultiPoint": MULTIPOINT,
    "LineString": POLYLINE,
    "MultiLineString": POLYLINE,
    "Polygon": POLYGON,
    "MultiPolygon": POLYGON,
}
_DIMENSION = {POINT: 0, MULTIPOINT: 0, POLYLINE: 1, POLYGON: 2}


def sr_json(srid: int) -> dict[str, int]:
    """The Esri spatialReference of an internal srid (Web Mercator as Esri writes it)."""
    if srid == WEB_MERCATOR:
        return {"wkid": ESRI_WEB_MERCATOR, "latestWkid": WEB_MERCATOR}
    return {"wkid": srid, "latestWkid": srid}


# --- GeoJSON -> Esri -------------------------------------------------------------------------


def _position_out(p: Sequence[float], z: bool, m: bool) -> list[float]:
    out = [p[0], p[1]]
    if z:
        out.append(p[2] if len(p) > 2 else 0.0)
    if m:
        out.append(p[3] if len(p) > 3 else None)  # type: ignore[arg-type]
    return out


def _positions_out(seq: Sequence[Sequence[float]], z: bool, m: bool) -> list[list[float]]:
    if not z and not m:
        return [[p[0], p[1]] for p in seq]
    return [_position_out(p, z, m) for p in seq]


def geojson_kind(geom: dict[str, Any] | None) -> str | None:
    """The esriGeometry* type a GeoJSON geometry maps to (collections: their highest
    dimension)."""
    if not geom:
        return None
    gtype = geom.get("type")
    if gtype == "GeometryCollection":
        kinds = [geojson_kind(g) for g in geom.get("geometries") or []]
        found = [k for k in kinds if k]
        return max(found, key=lambda k: _DIMENSION[k]) if found else None
    return GEOJSON_KIND.get(str(gtype))


def choose_kind(kinds: Sequence[str | None], fallback: str) -> str:
    """The one geometryType of a FeatureSet holding geometries of ``kinds``: the highest
    dimension present (points join multipoints when both occur)."""
    found = {k for k in kinds if k}
    if not found:
        return fallback
    top = max(found, key=lambda k: _DIMENSION[k])
    if top in (POINT, MULTIPOINT) and MULTIPOINT in found:
        return MULTIPOINT
    return top


def _parts(geom: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if geom.get("type") == "GeometryCollection":
        return [p for g in geom.get("geometries") or [] for p in _parts(g, kind)]
    own = GEOJSON_KIND.get(str(geom.get("type")))
    if own is None or _DIMENSION[own] != _DIMENSION[kind]:
        return []
    return [geom]


def geojson_to_esri(
    geom: dict[str, Any] | None, kind: str, *, z: bool = False, m: bool = False
) -> dict[str, Any] | None:
    """A GeoJSON geometry as an Esri geometry of type ``kind``: polygon exteriors clockwise
    and holes counter-clockwise; parts of another dimension (in collections) are left out,
    and a geometry with nothing of that dimension is None."""
    if not geom:
        return None
    parts = _parts(geom, kind)
    if not parts:
        return None
    if kind == POINT:
        if len(parts) != 1 or parts[0]["type"] != "Point":
            return None
        c = parts[0]["coordinates"]
        if not c:
            return None
        out: dict[str, Any] = {"x": c[0], "y": c[1]}
        if z:
            out["z"] = c[2] if len(c) > 2 else 0.0
        if m:
            out["m"] = c[3] if len(c) > 3 else None
        return out
    if kind == MULTIPOINT:
        points: list[Sequence[float]] = []
        for part in parts:
            points.extend([part["coordinates"]] if part["type"] == "Point" else part["coordinates"])
        return {"points": _positions_out(points, z, m)}
    if kind == POLYLINE:
        paths: list[Sequence[Sequence[float]]] = []
        for part in parts:
            paths.extend([part["coordinates"]] if part["type"] == "LineString" else part["coordinates"])
        return {"paths": [_positions_out(p, z, m) for p in paths if p]}
    rings: list[list[list[float]]] = []
    for part in parts:
        polygons = [part["coordinates"]] if part["type"] == "Polygon" else part["coordinates"]
        for polygon in polygons:
            for i, ring in enumerate(polygon):
                if ring:
                    rings.append(oriented(_positions_out(ring, z, m), clockwise=(i == 0)))
    return {"rings": rings}


def has_dimension(geom: dict[str, Any] | None, index: int) -> bool:
    """Whether any position of a GeoJSON geometry has a value at ``index`` (2: z, 3: m)."""
    if not geom:
        return False
    if geom.get("type") == "GeometryCollection":
        return any(has_dimension(g, index) for g in geom.get("geometries") or [])
    coords: Any = geom.get("coordinates")
    while isinstance(coords, list) and coords and isinstance(coords[0], list):
        coords = coords[0]
    return isinstance(coords, list) and len(coords) > index


# --- reprojection (outSR) -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _crs(code: int) -> CRS:
    """The CRS of an EPSG code, or of an Esri code (102003, ...) that EPSG lacks."""
    for authority in ("EPSG", "ESRI"):
        try:
            return CRS.from_authority(authority, str(code))
        except CRSError:
            continue
    raise errors.InvalidParameterValue(f"outSR: unknown spatial reference {code}")


@lru_cache(maxsize=256)
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(_crs(src), _crs(dst), always_xy=True)


def _positions(coords: Any, out: list[Sequence[float]]) -> None:
    if coords and isinstance(coords[0], int | float):
        out.append(coords)
        return
    for c in coords or ():
        _positions(c, out)


def _rebuilt(coords: Any, moved: Iterator[tuple[float, float]]) -> Any:
    if coords and isinstance(coords[0], int | float):
        x, y = next(moved)
        return [x, y, *coords[2:]]
    return [_rebuilt(c, moved) for c in coords or ()]


def _check_finite(xs: Any, ys: Any, dst: int) -> None:
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise errors.InvalidParameterValue(
            f"outSR: the geometries cannot be represented in {dst} (outside its area of use)"
        )


def reproject_geometry(geom: dict[str, Any] | None, src: int, dst: int) -> dict[str, Any] | None:
    """A GeoJSON geometry from ``src`` to ``dst`` (x and y; z and m values kept as they are)."""
    if not geom or src == dst:
        return geom
    if geom.get("type") == "GeometryCollection":
        return {**geom, "geometries": [reproject_geometry(g, src, dst) for g in geom.get("geometries") or []]}
    found: list[Sequence[float]] = []
    _positions(geom.get("coordinates"), found)
    if not found:
        return geom
    xs, ys = _transformer(src, dst).transform([p[0] for p in found], [p[1] for p in found])
    xs, ys = np.atleast_1d(xs), np.atleast_1d(ys)
    _check_finite(xs, ys, dst)
    moved = iter(zip(xs.tolist(), ys.tolist(), strict=True))
    return {**geom, "coordinates": _rebuilt(geom.get("coordinates"), moved)}


def reproject_bbox(box: Sequence[float], src: int, dst: int) -> list[float]:
    """A bounding box [xmin, ymin, (zmin,) xmax, ymax, (zmax)] as the box of its reprojected
    outline (edges densified: a reprojected box is no box)."""
    if src == dst:
        return list(box)
    half = len(box) // 2
    x0, y0, x1, y1 = box[0], box[1], box[half], box[half + 1]
    bounds = _transformer(src, dst).transform_bounds(x0, y0, x1, y1, densify_pts=21)
    _check_finite(np.array(bounds[0::2]), np.array(bounds[1::2]), dst)
    if half == 3:
        return [bounds[0], bounds[1], box[2], bounds[2], bounds[3], box[5]]
    return list(bounds)
