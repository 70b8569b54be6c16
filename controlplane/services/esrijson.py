"""Esri JSON (geometries, spatial references, FeatureSets) -> the internal GeoJSON-like form.

Pure functions, without a database or shapely: the GPServer adapter parses its inputs with
them, and the control plane uses them for Esri feature services read on a client's behalf
(``controlplane.services.references``), so both read Esri JSON the same way.

Esri polygons are a flat list of rings: exterior rings clockwise, holes counter-clockwise
(y up); GeoJSON (RFC 7946) nests holes under their exterior with the opposite orientation.
Positions are ``[x, y]``, ``[x, y, z]``, ``[x, y, m]`` (``hasM`` without ``hasZ``) or
``[x, y, z, m]`` in Esri JSON; internally a position carries ``z`` as its third value and
``m`` only after a ``z`` (GeoJSON has no measures), so an M-only input loses its measures.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from controlplane import exceptions as errors

DEFAULT_SRID = 4326

# Web Mercator under its Esri, deprecated EPSG and Google codes; internally EPSG:3857.
WEB_MERCATOR_ALIASES = frozenset({102100, 102113, 900913, 3785})
WEB_MERCATOR = 3857

POINT = "esriGeometryPoint"
MULTIPOINT = "esriGeometryMultipoint"
POLYLINE = "esriGeometryPolyline"
POLYGON = "esriGeometryPolygon"
ENVELOPE = "esriGeometryEnvelope"

Position = list[float]
Ring = list[Position]


# --- spatial references -----------------------------------------------------------------------


def _wkid(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def normalize_srid(code: int) -> int:
    """The internal code of an Esri wkid (Web Mercator aliases -> 3857)."""
    return WEB_MERCATOR if code in WEB_MERCATOR_ALIASES else code


def srid_from_wkt(wkt: str, where: str) -> int:
    """The EPSG (or Esri) code of a WKT spatial reference."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_wkt(wkt)
    except CRSError as exc:
        raise errors.InvalidParameterValue(f"{where}: invalid spatial reference WKT ({exc})") from None
    code = crs.to_epsg(min_confidence=70)
    if code is None:
        for authority in ("EPSG", "ESRI"):
            found = crs.to_authority(auth_name=authority, min_confidence=70)
            if found is not None and found[1].isdigit():
                code = int(found[1])
                break
    if code is None:
        raise errors.InvalidParameterValue(
            f"{where}: the spatial reference WKT matches no EPSG or Esri code; give a wkid"
        )
    return normalize_srid(int(code))


def srid_from_sr(value: Any, where: str) -> int | None:
    """An internal srid from an Esri spatialReference (``{wkid, latestWkid}`` or ``{wkt}``),
    a bare wkid, or None when the value names no spatial reference."""
    code = _wkid(value)
    if code is not None:
        return normalize_srid(code)
    if not isinstance(value, dict):
        if value in (None, ""):
            return None
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not a spatial reference")
    # latestWkid is the current code of a renamed system (102100 -> 3857).
    code = _wkid(value.get("latestWkid")) or _wkid(value.get("wkid"))
    if code is not None:
        return normalize_srid(code)
    wkt = value.get("wkt") or value.get("wkt2")
    if isinstance(wkt, str) and wkt.strip():
        return srid_from_wkt(wkt, where)
    if not value:
        return None
    raise errors.InvalidParameterValue(f"{where}: a spatial reference needs a wkid, latestWkid or wkt")


# --- rings -------------------------------------------------------------------------------------


def signed_area(ring: Sequence[Sequence[float]]) -> float:
    """Twice the shoelace area: positive counter-clockwise, negative clockwise (y up)."""
    total = 0.0
    n = len(ring)
    for i in range(n - 1):
        x0, y0 = ring[i][0], ring[i][1]
        x1, y1 = ring[i + 1][0], ring[i + 1][1]
        total += x0 * y1 - x1 * y0
    return total


def oriented(ring: Ring, clockwise: bool) -> Ring:
    """The ring turned to the wanted orientation (y up)."""
    area = signed_area(ring)
    if (clockwise and area > 0) or (not clockwise and area < 0):
        return ring[::-1]
    return ring


def _inside(point: Sequence[float], ring: Sequence[Sequence[float]]) -> bool:
    """Even-odd ray casting (a point on the boundary may go either way)."""
    x, y = point[0], point[1]
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _ring_within(inner: Ring, outer: Ring) -> bool:
    """Whether ``inner`` lies inside ``outer``: most of a few sampled vertices are (a hole
    may touch its exterior at a vertex, which then tests either way)."""
    step = max(1, (len(inner) - 1) // 5)
    samples = inner[: len(inner) - 1 : step][:5] or inner[:1]
    votes = sum(1 for p in samples if _inside(p, outer))
    return votes * 2 > len(samples)


def _closed(ring: Ring) -> Ring:
    if ring and ring[0][:2] != ring[-1][:2]:
        return [*ring, ring[0]]
    return ring


# Nesting rings compares each ring with the others: that work is bounded, so a polygon of
# very many rings is refused (400) instead of stalling the request before admission weighs it.
# One budget covers every polygon of a request (``nesting_budget``), else each polygon. Work
# is counted in nanoseconds as measured (about two seconds in all): comparing a ring's box
# with others costs 5 us plus 20 ns each, a point-in-ring test 200 ns an edge (12 vectorised,
# for large rings, plus 100 us).
MAX_NESTING_WORK = 2_000_000_000
_VECTOR_EDGES = 64
_SAMPLES = 5


@dataclass
class _Budget:
    work: int = 0


_request_budget: ContextVar[_Budget | None] = ContextVar("honua_nesting_budget", default=None)


@contextlib.contextmanager
def nesting_budget() -> Iterator[None]:
    """One ``MAX_NESTING_WORK`` for every polygon converted inside (a request's inputs)."""
    token = _request_budget.set(_Budget())
    try:
        yield
    finally:
        _request_budget.reset(token)


class _Nesting:
    """Containment tests between the rings of one polygon, within the budget."""

    def __init__(self, rings: list[Ring]) -> None:
        self.rings = rings
        self.budget = _request_budget.get() or _Budget()
        self.boxes = np.empty((len(rings), 4), dtype=np.float64)
        for i, ring in enumerate(rings):
            xs = [p[0] for p in ring]
            ys = [p[1] for p in ring]
            self.boxes[i] = (min(xs), min(ys), max(xs), max(ys))
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def spend(self, work: int) -> None:
        self.budget.work += work
        if self.budget.work > MAX_NESTING_WORK:
            raise errors.InvalidGeometry(
                f"a polygon of {len(self.rings)} rings is too complex to sort into exteriors and "
                "holes (or the request holds too many such polygons); write exterior rings "
                "clockwise and holes counter-clockwise, or send fewer or smaller rings"
            )

    def meeting(self, i: int, pool: np.ndarray) -> np.ndarray:
        """The rings of ``pool`` whose bounding box meets ring ``i``'s (no vertex of ``i`` can
        be inside a ring whose box it misses)."""
        if not len(pool):
            return pool
        self.spend(5_000 + 20 * len(pool))
        b = self.boxes[pool]
        x0, y0, x1, y1 = self.boxes[i]
        return pool[(b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)]

    def within(self, i: int, j: int) -> bool:
        """``_ring_within(rings[i], rings[j])``, vectorised for large rings."""
        inner, outer = self.rings[i], self.rings[j]
        if len(outer) <= _VECTOR_EDGES:
            self.spend(_SAMPLES * len(outer) * 200)
            return _ring_within(inner, outer)
        self.spend(_SAMPLES * len(outer) * 12 + 100_000)
        if j not in self._arrays:
            xy = np.asarray([(p[0], p[1]) for p in outer], dtype=np.float64)
            self._arrays[j] = (xy[:, 0], xy[:, 1])
        xs, ys = self._arrays[j]
        step = max(1, (len(inner) - 1) // _SAMPLES)
        samples = inner[: len(inner) - 1 : step][:_SAMPLES] or inner[:1]
        votes = sum(1 for p in samples if _inside_vector(p, xs, ys))
        return votes * 2 > len(samples)


def _inside_vector(point: Sequence[float], xs: np.ndarray, ys: np.ndarray) -> bool:
    """``_inside`` over arrays: the same even-odd test, edge (i, i - 1) for every i."""
    x, y = point[0], point[1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    crosses = (ys > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = (xj - xs) * (y - ys) / (yj - ys) + xs
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def rings_to_polygons(rings: list[Ring]) -> list[list[Ring]]:
    """Esri rings -> GeoJSON polygons (exterior counter-clockwise first, then its holes).

    Clockwise rings are exteriors and counter-clockwise ones holes, each hole going to the
    smallest exterior that contains it. A client that wrote every ring counter-clockwise
    (GeoJSON habits) gets its rings classified by nesting instead; a hole inside no
    exterior becomes an exterior. The work is bounded (``MAX_NESTING_WORK``).
    """
    rings = [_closed(r) for r in rings if r]
    if not rings:
        return []
    areas = [signed_area(r) for r in rings]
    exterior = [a <= 0 for a in areas]
    if all(exterior):
        return [[oriented(r, clockwise=False)] for r in rings]
    nesting = _Nesting(rings)
    if not any(exterior):
        # Nesting depth parity: a ring inside an even number of rings is an exterior.
        sizes = np.abs(np.asarray(areas, dtype=np.float64))
        everyone = np.arange(len(rings))
        exterior = []
        for i in range(len(rings)):
            nesting.spend(len(rings))
            around = nesting.meeting(i, everyone[sizes > sizes[i]])
            exterior.append(sum(1 for j in around if nesting.within(i, int(j))) % 2 == 0)
    shells = [i for i, e in enumerate(exterior) if e]
    shell_index = np.asarray(shells, dtype=np.int64)
    polygons: dict[int, list[Ring]] = {i: [oriented(rings[i], clockwise=False)] for i in shells}
    for i, is_exterior in enumerate(exterior):
        if is_exterior:
            continue
        containing = [int(s) for s in nesting.meeting(i, shell_index) if nesting.within(i, int(s))]
        owner = min(containing, key=lambda s: abs(areas[s])) if containing else None
        if owner is None:
            polygons[i] = [oriented(rings[i], clockwise=False)]
        else:
            polygons[owner].append(oriented(rings[i], clockwise=True))
    return [polygons[i] for i in sorted(polygons)]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.InvalidGeometry(f"{where}: coordinate {value!r} is not a number")
    if not math.isfinite(value):
        raise errors.InvalidGeometry(f"{where}: coordinate {value!r} is not finite")
    return value


def _position_in(c: Any, has_z: bool | None, has_m: bool, where: str) -> Position:
    if not isinstance(c, list | tuple) or len(c) < 2:
        raise errors.InvalidGeometry(f"{where}: a position needs [x, y]")
    pos = [_number(c[0], where), _number(c[1], where)]
    # A third value is z unless the geometry declares measures without z ([x, y, m]).
    if len(c) > 2 and c[2] is not None and (has_z or (has_z is None and not has_m)):
        pos.append(_number(c[2], where))
        if has_m and len(c) > 3 and c[3] is not None:
            pos.append(_number(c[3], where))
    return pos


def _positions_in(seq: Any, has_z: bool | None, has_m: bool, where: str) -> list[Position]:
    if not isinstance(seq, list):
        raise errors.InvalidGeometry(f"{where}: expected a list of positions")
    return [_position_in(c, has_z, has_m, where) for c in seq]


def _flag(doc: dict[str, Any], key: str, inherited: bool | None) -> bool | None:
    value = doc.get(key)
    return bool(value) if isinstance(value, bool) else inherited


def _empty_coordinate(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("nan", ""))


def esri_to_geojson(
    geom: Any, *, has_z: bool | None = None, has_m: bool = False, where: str = "geometry"
) -> dict[str, Any] | None:
    """An Esri geometry -> a GeoJSON geometry (None for an empty one). Envelopes become
    polygons; a polyline of one path a LineString, of several a MultiLineString."""
    if geom is None:
        return None
    if not isinstance(geom, dict):
        raise errors.InvalidGeometry(f"{where}: an Esri geometry must be an object")
    z = _flag(geom, "hasZ", has_z)
    m = bool(_flag(geom, "hasM", has_m))
    if "x" in geom or "y" in geom:
        if _empty_coordinate(geom.get("x")) or _empty_coordinate(geom.get("y")):
            return None
        pos = [_number(geom.get("x"), where), _number(geom.get("y"), where)]
        if geom.get("z") is not None and z is not False:
            pos.append(_number(geom["z"], where))
            if m and geom.get("m") is not None:
                pos.append(_number(geom["m"], where))
        return {"type": "Point", "coordinates": pos}
    if "points" in geom:
        points = _positions_in(geom["points"], z, m, where)
        return {"type": "MultiPoint", "coordinates": points} if points else None
    if "paths" in geom:
        if not isinstance(geom["paths"], list):
            raise errors.InvalidGeometry(f"{where}: 'paths' must be a list of paths")
        paths = [_positions_in(p, z, m, where) for p in geom["paths"]]
        paths = [p for p in paths if p]
        if not paths:
            return None
        if len(paths) == 1:
            return {"type": "LineString", "coordinates": paths[0]}
        return {"type": "MultiLineString", "coordinates": paths}
    if "rings" in geom:
        if not isinstance(geom["rings"], list):
            raise errors.InvalidGeometry(f"{where}: 'rings' must be a list of rings")
        polygons = rings_to_polygons([_positions_in(r, z, m, where) for r in geom["rings"]])
        if not polygons:
            return None
        if len(polygons) == 1:
            return {"type": "Polygon", "coordinates": polygons[0]}
        return {"type": "MultiPolygon", "coordinates": polygons}
    if "xmin" in geom:
        if _empty_coordinate(geom.get("xmin")):
            return None
        x0, y0 = _number(geom.get("xmin"), where), _number(geom.get("ymin"), where)
        x1, y1 = _number(geom.get("xmax"), where), _number(geom.get("ymax"), where)
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {"type": "Polygon", "coordinates": [ring]}
    if "curvePaths" in geom or "curveRings" in geom:
        raise errors.InvalidGeometry(f"{where}: true curves are not supported; densify them first")
    if not geom or set(geom) <= {"spatialReference"}:
        return None
    raise errors.InvalidGeometry(f"{where}: not an Esri geometry (no x/y, points, paths, rings or xmin)")


def esri_kind(geom: dict[str, Any]) -> str | None:
    """The esriGeometry* type of an Esri geometry object."""
    if "x" in geom:
        return POINT
    if "points" in geom:
        return MULTIPOINT
    if "paths" in geom:
        return POLYLINE
    if "rings" in geom:
        return POLYGON
    if "xmin" in geom:
        return ENVELOPE
    return None




# --- FeatureSets -------------------------------------------------------------------------------

# esriFieldType* -> internal field types (``fields`` of a feature collection).
FIELD_TYPES = {
    "esriFieldTypeSmallInteger": "integer",
    "esriFieldTypeInteger": "integer",
    "esriFieldTypeBigInteger": "integer",
    "esriFieldTypeSingle": "number",
    "esriFieldTypeDouble": "number",
    "esriFieldTypeString": "string",
    "esriFieldTypeGUID": "string",
    "esriFieldTypeGlobalID": "string",
    "esriFieldTypeXML": "string",
    "esriFieldTypeDate": "datetime",
    "esriFieldTypeDateOnly": "string",
    "esriFieldTypeTimeOnly": "string",
    "esriFieldTypeTimestampOffset": "string",
}


def epoch_ms_to_iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, UTC).isoformat().replace("+00:00", "Z")


def fields_in(fields: Any) -> tuple[list[dict[str, str]] | None, str | None, set[str]]:
    """Internal fields, the object-id field name and the date fields of an Esri ``fields`` list."""
    if not isinstance(fields, list):
        return None, None, set()
    out: list[dict[str, str]] = []
    oid = None
    dates = set()
    for f in fields:
        if not isinstance(f, dict) or not f.get("name"):
            continue
        name, ftype = str(f["name"]), str(f.get("type") or "")
        if ftype == "esriFieldTypeOID":
            oid = name
            continue
        if ftype in ("esriFieldTypeGeometry", "esriFieldTypeBlob", "esriFieldTypeRaster"):
            continue
        internal = FIELD_TYPES.get(ftype, "string")
        if internal == "datetime":
            dates.add(name)
        out.append({"name": name, "type": internal})
    return out, oid, dates


def featureset_srid(doc: dict[str, Any], where: str) -> int | None:
    """The srid of a FeatureSet: its own spatialReference, else its first geometry's."""
    found = srid_from_sr(doc.get("spatialReference"), where)
    if found is None:
        raw = doc.get("features")
        first = next((f.get("geometry") for f in raw if isinstance(f, dict) and f.get("geometry")), None) if (
            isinstance(raw, list)) else None
        found = srid_from_sr(first.get("spatialReference"), where) if isinstance(first, dict) else None
    return found


def featureset_to_internal(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """An Esri FeatureSet (a query answer of a feature service, or a GP input) -> the internal
    feature_collection. The object-id attribute becomes the feature id; date fields (epoch
    milliseconds) become ISO 8601 text."""
    raw = doc.get("features")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise errors.InvalidParameterValue(f"{where}: 'features' must be a list")
    found = featureset_srid(doc, where)
    has_z = doc.get("hasZ") if isinstance(doc.get("hasZ"), bool) else None
    has_m = bool(doc.get("hasM"))
    fields, oid, dates = fields_in(doc.get("fields"))
    oid = str(doc.get("objectIdFieldName") or oid or "") or None
    features = []
    for i, f in enumerate(raw):
        if not isinstance(f, dict):
            raise errors.InvalidParameterValue(f"{where}: feature {i} is not an object")
        attributes = f.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise errors.InvalidParameterValue(f"{where}: feature {i} attributes must be an object")
        props = dict(attributes)
        fid = props.pop(oid, None) if oid else None
        for name in dates & props.keys():
            if isinstance(props[name], int | float) and not isinstance(props[name], bool):
                props[name] = epoch_ms_to_iso(props[name])
        geom = esri_to_geojson(f.get("geometry"), has_z=has_z, has_m=has_m, where=f"{where}: feature {i}")
        feature: dict[str, Any] = {"type": "Feature", "geometry": geom, "properties": props}
        if fid is not None:
            feature["id"] = fid
        features.append(feature)
    out: dict[str, Any] = {"type": "FeatureCollection", "srid": found or DEFAULT_SRID, "features": features}
    if fields is not None:
        out["fields"] = fields
    return out
