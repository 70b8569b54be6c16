"""Spatial references: CRS lookup by EPSG code, cached transformers, vectorized reprojection."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from executors.base import InvalidInput
from executors.units import LINEAR_UNITS

WGS84 = 4326

# Web Mercator under its codes (EPSG, the Google/OSGeo alias, Esri's, the deprecated EPSG
# one): a map projection whose plane units are metres only at the equator (a "metre" of
# the plane is cos(latitude) metres on the ground, 0.62 m in London).
WEB_MERCATOR_SRIDS = frozenset({3857, 900913, 102100, 102113, 3785})


@cache
def crs_for(srid: int) -> CRS:
    """The pyproj CRS of an EPSG code; InvalidInput when unknown or not 2D-usable."""
    try:
        crs = CRS.from_epsg(int(srid))
    except (CRSError, TypeError, ValueError) as exc:
        raise InvalidInput(f"unknown spatial reference EPSG:{srid}") from exc
    if not (crs.is_geographic or crs.is_projected):
        raise InvalidInput(f"EPSG:{srid} is neither geographic nor projected")
    return crs


def srid_of(value: Any) -> int:
    """An EPSG code from a spatial_reference value (``{"srid"}``, ``{"wkt"}``) or a plain int."""
    if isinstance(value, bool):
        raise InvalidInput(f"not a spatial reference: {value!r}")
    if isinstance(value, int):
        crs_for(value)
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return srid_of(int(value))
    if isinstance(value, dict):
        if "srid" in value:
            return srid_of(value["srid"])
        if "wkid" in value or "latestWkid" in value:
            return srid_of(value.get("latestWkid") or value["wkid"])
        if "wkt" in value:
            try:
                code = CRS.from_wkt(value["wkt"]).to_epsg()
            except CRSError as exc:
                raise InvalidInput(f"invalid spatial reference WKT: {exc}") from exc
            if code is None:
                raise InvalidInput("spatial reference WKT has no EPSG equivalent")
            return srid_of(code)
    raise InvalidInput(f"not a spatial reference: {value!r}")


def is_geographic(srid: int) -> bool:
    return bool(crs_for(srid).is_geographic)


def ground_distances(method: str, srid: int) -> bool:
    """Whether a linear distance (in metres, feet...) given with ``method`` (auto / planar /
    geodesic) holds on the ground for data in ``srid``, rather than in the CRS's plane.

    Geographic CRSs: always (their only plane is lon/lat degrees; a distance in "degree" is
    the caller's planar case). ``geodesic``: for every CRS. ``auto``: for Web Mercator too,
    whose plane is not metric away from the equator; other projected CRSs are measured in
    their own plane and unit. ``planar``: in the projected CRS's plane. The postgis tier
    (``executors.postgis.registry`` and the SQL functions' ``p_method``) follows the same
    rule.
    """
    if int(srid) in WEB_MERCATOR_SRIDS:
        return method != "planar"
    return method == "geodesic" or is_geographic(srid)


def unit_factor(srid: int) -> float:
    """Size of the CRS's horizontal unit: meters for projected CRSs, radians for geographic."""
    return float(crs_for(srid).axis_info[0].unit_conversion_factor)


def to_crs_units(value: float, unit: str, srid: int) -> float:
    """A length in ``unit`` expressed in a projected CRS's own unit (meter, foot...)."""
    if unit == "degree":
        raise InvalidInput(f"a distance in degrees needs geographic data; EPSG:{srid} is projected")
    return value * LINEAR_UNITS[unit] / unit_factor(srid)


@lru_cache(maxsize=512)
def transformer(src: int, dst: int) -> Transformer:
    """A cached lon/lat-ordered (always_xy) transformer between two EPSG codes."""
    return Transformer.from_crs(crs_for(src), crs_for(dst), always_xy=True)


@cache
def geodetic_transformer(srid: int) -> Transformer:
    """From a projected CRS to its own geographic base (lon, lat), always_xy."""
    crs = crs_for(srid)
    return Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)


def transform_geometries(
    geoms: np.ndarray, tr: Transformer, *, direction: str = "FORWARD"
) -> np.ndarray:
    """Apply a pyproj transformer to every vertex of an array of geometries (Z kept)."""

    def apply(coords: np.ndarray) -> np.ndarray:
        if coords.shape[1] == 3:
            x, y, z = tr.transform(coords[:, 0], coords[:, 1], coords[:, 2], direction=direction)
            out = np.column_stack([x, y, z])
        else:
            x, y = tr.transform(coords[:, 0], coords[:, 1], direction=direction)
            out = np.column_stack([x, y])
        return out

    result = shapely.transform(geoms, apply, include_z=None)
    return np.asarray(result, dtype=object)


def reproject(geoms: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Reproject an array of geometries from one EPSG code to another (vectorized)."""
    if src == dst or len(geoms) == 0:
        return geoms
    out = transform_geometries(geoms, transformer(src, dst))
    bad = ~_finite(out)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"feature {index} cannot be represented in EPSG:{dst} (outside its area of use)"
        )
    return out


def _finite(geoms: np.ndarray) -> np.ndarray:
    """Per geometry: all coordinates finite (None and empty count as finite)."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    ok = np.ones(len(geoms), dtype=bool)
    if len(coords):
        bad_rows = ~np.isfinite(coords).all(axis=1)
        ok[np.unique(index[bad_rows])] = False
    return ok
