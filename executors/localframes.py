"""Local metric frames: how linear distances on geographic data are honoured on the ground.

Geographic geometries are grouped by the 2-degree longitude band of their bounding-box centre
and each group is projected to an ellipsoidal transverse Mercator centred on its band
(``lat_0=0``, ``k_0=1``, the CRS's own ellipsoid, ``+over`` so longitudes past +/-180 stay
continuous). The operation runs vectorized on the group's projected array and the result is
projected back with the same pipeline. Within a band the TM scale error is at most ~1.5e-4
at the equator, and :func:`metric_apply` hands each geometry its own scale factor
(``k = 1 + x^2 / 2MN``) so distances can be corrected to ~1e-8. Features wider than a band
get a frame centred on themselves; with ``split_wide`` (valid for positive buffers) they are
cut into band pieces, each processed in its own frame, and the pieces are unioned again.

Results are wrapped back to [-180, 180]: geometries crossing the antimeridian become
multi-part geometries split at +/-180. Limits: results containing a pole cannot be written
as planar lon/lat geometries and come back distorted (compute such cases in a polar
projection through ``process_srid``); a single feature spanning more than ~60 degrees of
longitude is processed in one frame (accuracy degrades, ~0.4 % at 10 degrees wide) unless it
can be split.

For nearest-distance work :func:`aeqd_groups` gives azimuthal equidistant frames per
2x2-degree cell, valid over the whole globe except near the antipode of the cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer

from executors.base import InvalidInput
from executors.spatialref import crs_for, geodetic_transformer, transform_geometries

BAND_DEGREES = 2.0
_DEG = math.pi / 180.0

MetricFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Geodetic:
    """What a frame pipeline needs from a geographic CRS: the ellipsoid and angular unit."""

    a: float
    b: float
    unit_rad: float  # radians per CRS unit (degree, grad...)

    @classmethod
    def of(cls, crs: CRS) -> Geodetic:
        geo = crs if crs.is_geographic else crs.geodetic_crs
        # Invariant: every caller passes a CRS from crs_for(), which only returns geographic or
        # projected CRSs; a projected CRS always has a geodetic base, and a geodetic CRS (or
        # datum ensemble) always has an ellipsoid.
        assert geo is not None, f"{crs.name} has no geodetic CRS"
        ellipsoid = geo.ellipsoid
        assert ellipsoid is not None, f"{geo.name} has no ellipsoid"
        return cls(
            a=float(ellipsoid.semi_major_metre),
            b=float(ellipsoid.semi_minor_metre),
            unit_rad=float(geo.axis_info[0].unit_conversion_factor),
        )

    @property
    def degrees_per_unit(self) -> float:
        return self.unit_rad / _DEG

    @property
    def half_turn(self) -> float:
        """180 degrees in CRS units."""
        return math.pi / self.unit_rad

    @property
    def e2(self) -> float:
        return 1.0 - (self.b * self.b) / (self.a * self.a)


@lru_cache(maxsize=4096)
def tmerc_transformer(geo: Geodetic, lon_0: float) -> Transformer:
    """CRS lon/lat -> transverse Mercator metres centred on ``lon_0`` (CRS units)."""
    return Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=unitconvert +xy_in={_unit_name(geo)} +xy_out=rad "
        f"+step +proj=tmerc +lat_0=0 +lon_0={lon_0 * geo.degrees_per_unit!r} +k_0=1 "
        f"+x_0=0 +y_0=0 +a={geo.a!r} +b={geo.b!r} +over"
    )


@lru_cache(maxsize=4096)
def aeqd_transformer(geo: Geodetic, lon_0: float, lat_0: float) -> Transformer:
    """CRS lon/lat -> azimuthal equidistant metres centred on (lon_0, lat_0) (CRS units)."""
    scale = geo.degrees_per_unit
    return Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=unitconvert +xy_in={_unit_name(geo)} +xy_out=rad "
        f"+step +proj=aeqd +lat_0={lat_0 * scale!r} +lon_0={lon_0 * scale!r} "
        f"+x_0=0 +y_0=0 +a={geo.a!r} +b={geo.b!r} +over"
    )


def _unit_name(geo: Geodetic) -> str:
    return "deg" if abs(geo.unit_rad - _DEG) < 1e-15 else repr(geo.unit_rad)


@dataclass(frozen=True)
class Frame:
    """One local projection: forward to metres, inverse back to the geographic CRS."""

    transformer: Transformer
    geo: Geodetic
    unwrap: bool = False  # data straddles the antimeridian: longitudes < 0 taken as +360

    def forward(self, geoms: np.ndarray) -> np.ndarray:
        if self.unwrap:
            geoms = _east_of_antimeridian(geoms, self.geo)
        out = transform_geometries(geoms, self.transformer)
        _require_finite(out, "projected to a local frame")
        return out

    def inverse(self, geoms: np.ndarray) -> np.ndarray:
        out = transform_geometries(geoms, self.transformer, direction="INVERSE")
        return wrap_antimeridian(out, self.geo)


def frame_for(geoms: np.ndarray, srid: int) -> Frame:
    """One TM frame centred on the whole array (for operations that need a single plane)."""
    geo = Geodetic.of(crs_for(srid))
    bounds = _bounds(geoms)
    finite = np.isfinite(bounds).all(axis=1)
    if not finite.any():
        return Frame(tmerc_transformer(geo, 0.0), geo)
    minx = float(bounds[finite, 0].min())
    maxx = float(bounds[finite, 2].max())
    if maxx - minx > geo.half_turn:
        x = shapely.get_coordinates(geoms)[:, 0]
        shifted = np.where(x < 0, x + 2.0 * geo.half_turn, x)
        if len(x) and shifted.max() - shifted.min() < maxx - minx:
            centre = (float(shifted.min()) + float(shifted.max())) / 2.0
            return Frame(tmerc_transformer(geo, round(centre, 6)), geo, unwrap=True)
    return Frame(tmerc_transformer(geo, round((minx + maxx) / 2.0, 6)), geo)


def _east_of_antimeridian(geoms: np.ndarray, geo: Geodetic) -> np.ndarray:
    """Longitudes below 0 moved by +360 so data straddling +/-180 is continuous."""
    turn = 2.0 * geo.half_turn

    def shift(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0] = np.where(out[:, 0] < 0, out[:, 0] + turn, out[:, 0])
        return out

    return np.asarray(shapely.transform(geoms, shift, include_z=None), dtype=object)


def _unwrap_straddling(
    geoms: np.ndarray, bounds: np.ndarray, geo: Geodetic
) -> tuple[np.ndarray, np.ndarray]:
    """Features whose parts sit on both sides of the antimeridian (a MultiPolygon split at
    +/-180, as RFC 7946 asks) made continuous east of 180; a part that itself spans more
    than 180 degrees keeps its planar lon/lat meaning."""
    half = geo.half_turn
    width = bounds[:, 2] - bounds[:, 0]
    candidates = np.flatnonzero(np.isfinite(width) & (width > half))
    if len(candidates) == 0:
        return geoms, bounds
    shifted = _east_of_antimeridian(geoms[candidates], geo)
    parts, owner = shapely.get_parts(shifted, return_index=True)
    part_bounds = _bounds(parts)
    part_wide = np.zeros(len(candidates), dtype=bool)
    np.logical_or.at(part_wide, owner, part_bounds[:, 2] - part_bounds[:, 0] > half)
    new_bounds = _bounds(shifted)
    better = ~part_wide & (new_bounds[:, 2] - new_bounds[:, 0] < width[candidates])
    if not better.any():
        return geoms, bounds
    geoms, bounds = geoms.copy(), bounds.copy()
    # parts cut along the antimeridian now share an edge: merge them back into one area
    joined = shapely.make_valid(shifted[better], method="structure", keep_collapsed=True)
    geoms[candidates[better]] = np.asarray(joined, dtype=object)
    bounds[candidates[better]] = new_bounds[better]
    return geoms, bounds


def metric_apply(
    geoms: np.ndarray,
    srid: int,
    fn: MetricFn,
    *,
    geodesic: bool = False,
    split_wide: bool = False,
) -> np.ndarray:
    """Run ``fn(geoms_in_metric_units, units_per_meter)`` so its distances hold on the ground.

    Geographic ``srid``: local TM frames (see module docstring). Projected ``srid``: the CRS's
    plane and unit, unless ``geodesic`` (then through its geographic base and local frames).
    The result comes back in ``srid``.
    """
    crs = crs_for(srid)
    n = len(geoms)
    if n == 0:
        return geoms
    if crs.is_projected and not geodesic:
        per_meter = 1.0 / float(crs.axis_info[0].unit_conversion_factor)
        return np.asarray(fn(geoms, np.full(n, per_meter)), dtype=object)
    geo = Geodetic.of(crs)
    if crs.is_projected:
        tr = geodetic_transformer(srid)
        lonlat = transform_geometries(geoms, tr)
        result = _in_tm_frames(lonlat, geo, fn, split_wide)
        return transform_geometries(result, tr, direction="INVERSE")
    return _in_tm_frames(geoms, geo, fn, split_wide)


def _in_tm_frames(geoms: np.ndarray, geo: Geodetic, fn: MetricFn, split_wide: bool) -> np.ndarray:
    n = len(geoms)
    result = np.empty(n, dtype=object)
    geoms, bounds = _unwrap_straddling(geoms, _bounds(geoms), geo)
    finite = np.isfinite(bounds).all(axis=1)
    band = BAND_DEGREES / geo.degrees_per_unit
    centre = (bounds[:, 0] + bounds[:, 2]) / 2.0
    wide = finite & (bounds[:, 2] - bounds[:, 0] > band)
    lon_0 = (np.floor(centre / band) + 0.5) * band
    lon_0[wide] = np.round(centre[wide] / band * 20.0) * band / 20.0
    split = wide if split_wide else np.zeros(n, dtype=bool)
    if split.any():
        _split_wide(geoms, bounds, split, geo, fn, result)
    missing = np.flatnonzero(~finite)
    if len(missing):
        result[missing] = fn(geoms[missing], np.ones(len(missing)))
    _run_groups(geoms, np.flatnonzero(finite & ~split), lon_0, geo, fn, result)
    return result


def _run_groups(
    geoms: np.ndarray,
    idx: np.ndarray,
    lon_0: np.ndarray,
    geo: Geodetic,
    fn: MetricFn,
    result: np.ndarray,
) -> None:
    if len(idx) == 0:
        return
    keys, inverse = np.unique(lon_0[idx], return_inverse=True)
    for k, key in enumerate(keys.tolist()):
        members = idx[inverse == k]
        frame = Frame(tmerc_transformer(geo, key), geo)
        projected = frame.forward(geoms[members])
        out = fn(projected, tm_scale(projected, geo))
        result[members] = frame.inverse(np.asarray(out, dtype=object))


def _split_wide(
    geoms: np.ndarray,
    bounds: np.ndarray,
    wide: np.ndarray,
    geo: Geodetic,
    fn: MetricFn,
    result: np.ndarray,
) -> None:
    band = BAND_DEGREES / geo.degrees_per_unit
    owners = np.flatnonzero(wide)
    first = np.floor(bounds[owners, 0] / band).astype(np.int64)
    last = np.floor(bounds[owners, 2] / band).astype(np.int64)
    counts = last - first + 1
    owner_of_piece = np.repeat(owners, counts)
    starts = np.repeat(first, counts) + _ranges(counts)
    lat_pad = 1.0 / geo.degrees_per_unit
    boxes = shapely.box(
        starts * band,
        np.repeat(bounds[owners, 1], counts) - lat_pad,
        (starts + 1) * band,
        np.repeat(bounds[owners, 3], counts) + lat_pad,
    )
    pieces = np.asarray(shapely.intersection(geoms[owner_of_piece], boxes), dtype=object)
    keep = ~shapely.is_empty(pieces)
    pieces, owner_of_piece, starts = pieces[keep], owner_of_piece[keep], starts[keep]
    out = np.empty(len(pieces), dtype=object)
    _run_groups(pieces, np.arange(len(pieces)), (starts + 0.5) * band, geo, fn, out)
    order = np.argsort(owner_of_piece, kind="stable")
    owner_sorted = owner_of_piece[order]
    cuts = np.flatnonzero(np.diff(owner_sorted)) + 1
    for group in np.split(order, cuts):
        # wide features are few; a GEOS union per wide feature merges its band pieces
        result[owner_of_piece[group[0]]] = shapely.union_all(out[group])


def _ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] for counts."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    return np.arange(total) - np.repeat(ends - counts, counts)


def tm_scale(projected: np.ndarray, geo: Geodetic) -> np.ndarray:
    """Per geometry: TM point scale at its bounding-box centre (projected metres per metre)."""
    bounds = _bounds(projected)
    x = (bounds[:, 0] + bounds[:, 2]) / 2.0
    y = (bounds[:, 1] + bounds[:, 3]) / 2.0
    phi = np.clip(y / geo.a, -math.pi / 2, math.pi / 2)  # footpoint latitude, close enough
    s2 = np.sin(phi) ** 2
    e2 = geo.e2
    w = 1.0 - e2 * s2
    mn = geo.a * geo.a * (1.0 - e2) / (w * w)
    q = x * x / mn
    k = 1.0 + q / 2.0 + q * q / 24.0
    return np.where(np.isfinite(k), k, 1.0)


def wrap_antimeridian(geoms: np.ndarray, geo: Geodetic) -> np.ndarray:
    """Shift / split geometries reaching past +/-180 so every part lies in [-180, 180]."""
    half = geo.half_turn
    bounds = _bounds(geoms)
    over = np.isfinite(bounds).all(axis=1) & ((bounds[:, 0] < -half) | (bounds[:, 2] > half))
    if not over.any():
        return geoms
    out = geoms.copy()
    idx = np.flatnonzero(over)
    sub = geoms[idx]
    inf = 4.0 * half
    west = shapely.box(-inf, -inf, -half, inf)
    middle = shapely.box(-half, -inf, half, inf)
    east = shapely.box(half, -inf, inf, inf)
    parts = [
        shapely.intersection(sub, middle),
        _shift(shapely.intersection(sub, west), 2.0 * half),
        _shift(shapely.intersection(sub, east), -2.0 * half),
    ]
    stacked = np.asarray(shapely.union(shapely.union(parts[0], parts[1]), parts[2]))
    out[idx] = stacked
    return out


def _shift(geoms: np.ndarray, dx: float) -> np.ndarray:
    return np.asarray(shapely.transform(geoms, lambda c: c + np.array([dx, 0.0])), dtype=object)


@dataclass(frozen=True)
class AeqdGroup:
    members: np.ndarray
    frame: Frame
    lon_0: float
    lat_0: float


def aeqd_groups(geoms: np.ndarray, srid: int, cell_degrees: float = 2.0) -> Iterator[AeqdGroup]:
    """Azimuthal equidistant frames per cell of ``cell_degrees`` (geographic srid)."""
    geo = Geodetic.of(crs_for(srid))
    cell = cell_degrees / geo.degrees_per_unit
    bounds = _bounds(geoms)
    finite = np.flatnonzero(np.isfinite(bounds).all(axis=1))
    cx = (bounds[finite, 0] + bounds[finite, 2]) / 2.0
    cy = (bounds[finite, 1] + bounds[finite, 3]) / 2.0
    key = np.column_stack([np.floor(cx / cell), np.floor(cy / cell)])
    keys, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for k, (kx, ky) in enumerate(keys.tolist()):
        lon_0 = (kx + 0.5) * cell
        lat_0 = float(np.clip((ky + 0.5) * cell, -geo.half_turn / 2, geo.half_turn / 2))
        yield AeqdGroup(
            members=finite[inverse == k],
            frame=Frame(aeqd_transformer(geo, lon_0, lat_0), geo),
            lon_0=lon_0,
            lat_0=lat_0,
        )


def _bounds(geoms: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.bounds(geoms), dtype=float).reshape(-1, 4)


def _require_finite(geoms: np.ndarray, what: str) -> None:
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    if len(coords) and not np.isfinite(coords).all():
        bad = int(index[~np.isfinite(coords).all(axis=1)][0])
        raise InvalidInput(
            f"a geometry (position {bad} of its group) cannot be {what}: "
            "coordinates out of range (split features at the antimeridian)"
        )
