"""Internal geometry encodings <-> shapely arrays, fast (vectorized; the hot path of every tier).

A feature collection becomes a :class:`Features`: an object ndarray of shapely geometries
(``None`` for a null geometry), the property dicts, the ids and the EPSG code. Parsing uses
``shapely.points`` when every geometry is a Point and ``shapely.from_geojson`` otherwise;
writing groups geometries by type and rebuilds GeoJSON coordinate lists from
``shapely.to_ragged_array`` (no per-vertex Python work beyond building the lists).
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.errors import GEOSException

from executors.base import InvalidInput

DEFAULT_SRID = 4326

_GEOJSON_TYPES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
}
_RAGGED_TYPES = (1, 3, 4, 5, 6)


@dataclass(slots=True)
class Features:
    """A feature collection as arrays: geometries (object ndarray), properties, ids, srid."""

    geometries: np.ndarray
    properties: list[dict[str, Any]]
    ids: list[Any]
    srid: int
    fields: list[dict[str, Any]] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.geometries)

    def take(self, index: np.ndarray | Sequence[int]) -> Features:
        """The features at ``index`` (in that order; repeats allowed)."""
        idx = np.asarray(index, dtype=np.intp)
        items = idx.tolist()
        return Features(
            geometries=self.geometries[idx],
            properties=[self.properties[i] for i in items],
            ids=[self.ids[i] for i in items],
            srid=self.srid,
            fields=self.fields,
        )

    def replace(
        self,
        geometries: np.ndarray | None = None,
        *,
        srid: int | None = None,
        properties: list[dict[str, Any]] | None = None,
    ) -> Features:
        """A copy with new geometries / srid / properties (same length)."""
        return Features(
            geometries=self.geometries if geometries is None else geometries,
            properties=self.properties if properties is None else properties,
            ids=self.ids,
            srid=self.srid if srid is None else srid,
            fields=self.fields,
        )

    def with_field(self, name: str, values: Sequence[Any], type_: str) -> Features:
        """A copy with property ``name`` set from ``values`` (new dicts; inputs untouched)."""
        props = [{**p, name: v} for p, v in zip(self.properties, values, strict=True)]
        fields = self.fields
        if fields is not None:
            fields = [f for f in fields if f.get("name") != name] + [{"name": name, "type": type_}]
        return Features(self.geometries, props, self.ids, self.srid, fields)


def empty_features(srid: int) -> Features:
    return Features(np.empty(0, dtype=object), [], [], srid)


# -- reading -------------------------------------------------------------------------


def read_features(
    value: Any, *, name: str = "features", default_srid: int = DEFAULT_SRID
) -> Features:
    """Parse a feature_collection (or a single Feature / geometry) internal value."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name}: expected a feature collection object")
    kind = value.get("type")
    srid = _srid(value, name, default_srid)
    if kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list):
            raise InvalidInput(f"{name}: 'features' must be a list")
    elif kind == "Feature":
        features = [value]
    elif kind in _GEOJSON_TYPES.values() or kind == "GeometryCollection":
        features = [{"type": "Feature", "geometry": value, "properties": {}}]
    else:
        raise InvalidInput(
            f"{name}: expected a FeatureCollection, Feature or geometry, got {kind!r}"
        )
    try:
        raw = [f.get("geometry") for f in features]
        props = [f.get("properties") for f in features]
        ids = [f.get("id") for f in features]
    except AttributeError:
        index = next(i for i, f in enumerate(features) if not isinstance(f, Mapping))
        raise InvalidInput(f"{name}: feature {index} is not a GeoJSON Feature object") from None
    props = [p if type(p) is dict else _properties(p, i, name) for i, p in enumerate(props)]
    fields = value.get("fields")
    return Features(
        geometries=geometries_from_geojson(raw, name=name),
        properties=props,
        ids=ids,
        srid=srid,
        fields=list(fields) if isinstance(fields, list) else None,
    )


def read_geometry(
    value: Any, *, name: str = "geometry", default_srid: int = DEFAULT_SRID
) -> tuple[shapely.Geometry, int]:
    """Parse a geometry internal value (GeoJSON geometry plus ``srid``)."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name}: expected a geometry object")
    srid = _srid(value, name, default_srid)
    geoms = geometries_from_geojson([value], name=name)
    geom = geoms[0]
    if geom is None:
        raise InvalidInput(f"{name}: geometry is null")
    return geom, srid


def geometries_from_geojson(raw: Sequence[Any], *, name: str = "features") -> np.ndarray:
    """GeoJSON geometry dicts (or None) -> object ndarray of shapely geometries (or None).

    Each geometry type is built from one flat coordinate array (``shapely.from_ragged_array``,
    about 4x faster than GEOS's GeoJSON reader); whatever does not fit that mould
    (collections, malformed input) goes through ``shapely.from_geojson``, whose error names
    the feature.
    """
    n = len(raw)
    if n == 0:
        return np.empty(0, dtype=object)
    with _gc_paused():
        points = _points_fast(raw)
        if points is not None:
            return points
        out = np.empty(n, dtype=object)
        by_type: dict[str | None, list[int]] = {}
        for i, geom in enumerate(raw):
            if geom is not None:
                kind = geom.get("type") if isinstance(geom, dict) else None
                by_type.setdefault(kind if kind in _RAGGED_READERS else None, []).append(i)
        slow = by_type.pop(None, [])
        for kind, idx in by_type.items():
            assert kind is not None
            parsed = _read_ragged(kind, [raw[i] for i in idx])
            if parsed is None:
                slow.extend(idx)
            else:
                out[idx] = parsed
        if slow:
            slow.sort()
            out[slow] = _read_geojson(raw, slow, name)
    return out


def _read_geojson(raw: Sequence[Any], idx: list[int], name: str) -> np.ndarray:
    texts = np.array([orjson.dumps(raw[i]) for i in idx], dtype=object)
    geoms = np.asarray(shapely.from_geojson(texts, on_invalid="ignore"), dtype=object)
    failed = np.flatnonzero(shapely.is_missing(geoms))
    if len(failed):
        index = idx[int(failed[0])]
        more = f" ({len(failed) - 1} more invalid)" if len(failed) > 1 else ""
        raise InvalidInput(
            f"{name}: feature {index} has an invalid geometry: {_reason(raw[index])}{more}"
        )
    return geoms


def _points_fast(raw: Sequence[Any]) -> np.ndarray | None:
    """All geometries are 2D/3D Points with numeric coordinates: build them in one call."""
    try:
        if not all(g["type"] == "Point" for g in raw):
            return None
        coords = np.array([g["coordinates"] for g in raw], dtype=float)
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if coords.ndim != 2 or coords.shape[1] not in (2, 3) or not np.isfinite(coords).all():
        return None
    return np.asarray(shapely.points(coords), dtype=object)


# GeoJSON type -> (shapely type, nesting depth of position lists, minimum positions per
# innermost list, innermost lists are rings)
_RAGGED_READERS: dict[str, tuple[shapely.GeometryType, int, int, bool]] = {
    "Point": (shapely.GeometryType.POINT, 0, 1, False),
    "LineString": (shapely.GeometryType.LINESTRING, 1, 2, False),
    "MultiPoint": (shapely.GeometryType.MULTIPOINT, 1, 1, False),
    "Polygon": (shapely.GeometryType.POLYGON, 2, 4, True),
    "MultiLineString": (shapely.GeometryType.MULTILINESTRING, 2, 2, False),
    "MultiPolygon": (shapely.GeometryType.MULTIPOLYGON, 3, 4, True),
}


def _read_ragged(kind: str, geoms: list[dict[str, Any]]) -> np.ndarray | None:
    """Geometries of one GeoJSON type via flat coordinates and offsets; None if malformed."""
    shape_type, depth, minimum, rings = _RAGGED_READERS[kind]
    try:
        level: list[Any] = [g["coordinates"] for g in geoms]
        if depth == 0:
            coords = np.array(level, dtype=float)
            offsets: list[np.ndarray] = []
        else:
            offsets = []
            for _ in range(depth):
                counts = [len(item) for item in level]
                offsets.append(np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]))
                level = list(itertools.chain.from_iterable(level))
            coords = np.array(level, dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    if coords.ndim != 2 or coords.shape[1] not in (2, 3) or not np.isfinite(coords).all():
        return None  # empty geometries included: the GeoJSON reader handles them
    if depth:
        inner = offsets[-1]
        if (np.diff(inner) < minimum).any():
            return None
        if rings and not (coords[inner[:-1]] == coords[inner[1:] - 1]).all():
            return None
    elif len(coords) != len(geoms):
        return None
    try:
        built = shapely.from_ragged_array(shape_type, coords, tuple(offsets[::-1]))
    except (GEOSException, ValueError, IndexError):
        return None
    return np.asarray(built, dtype=object)


def _reason(geom: Any) -> str:
    if not isinstance(geom, Mapping):
        return f"expected a GeoJSON geometry object, got {type(geom).__name__}"
    try:
        shapely.from_geojson(orjson.dumps(geom))
    except (GEOSException, ValueError, TypeError) as exc:
        return str(exc).strip()
    return "unreadable GeoJSON geometry"


def _properties(value: Any, index: int, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    raise InvalidInput(f"{name}: feature {index} properties must be an object")


def _srid(value: Mapping[str, Any], name: str, default: int) -> int:
    srid = value.get("srid", default)
    if srid is None:
        return default
    if isinstance(srid, bool) or not isinstance(srid, int):
        try:
            return int(srid)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name}: srid must be an integer EPSG code") from None
    return srid


# -- writing -------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building millions of coordinate lists.

    Each allocation burst would otherwise trigger collections that rescan every live
    container; building 10,000 buffers' coordinates takes 3-5x longer with it running.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_features(features: Features) -> dict[str, Any]:
    """Features -> feature_collection internal value."""
    with _gc_paused():
        geojson = geometries_to_geojson(features.geometries)
        out = []
        for fid, geom, props in zip(features.ids, geojson, features.properties, strict=True):
            if fid is None:
                out.append({"type": "Feature", "geometry": geom, "properties": props})
            else:
                out.append({"type": "Feature", "id": fid, "geometry": geom, "properties": props})
    doc: dict[str, Any] = {"type": "FeatureCollection", "srid": features.srid, "features": out}
    if features.fields is not None:
        doc["fields"] = features.fields
    return doc


def write_geometry(geom: shapely.Geometry | None, srid: int) -> dict[str, Any] | None:
    """A shapely geometry -> geometry internal value (None stays None)."""
    if geom is None:
        return None
    doc = geometries_to_geojson(np.array([geom], dtype=object))[0]
    assert doc is not None
    doc["srid"] = srid
    return doc


def geometries_to_geojson(geoms: np.ndarray) -> list[dict[str, Any] | None]:
    """Object ndarray of shapely geometries (or None) -> GeoJSON geometry dicts (or None)."""
    with _gc_paused():
        return _to_geojson(np.asarray(geoms, dtype=object))


def _to_geojson(geoms: np.ndarray) -> list[dict[str, Any] | None]:
    n = len(geoms)
    out: list[dict[str, Any] | None] = [None] * n
    if n == 0:
        return out
    type_ids = shapely.get_type_id(geoms)
    empty = shapely.is_empty(geoms)
    has_z = shapely.has_z(geoms)
    plain = (type_ids >= 0) & ~empty
    for type_id in np.unique(type_ids[plain]).tolist():
        if type_id not in _GEOJSON_TYPES:
            continue
        for z in (False, True):
            idx = np.flatnonzero(plain & (type_ids == type_id) & (has_z == z))
            if len(idx):
                docs = _write_group(geoms[idx], type_id, z)
                for i, doc in zip(idx.tolist(), docs, strict=True):
                    out[i] = doc
    for i in np.flatnonzero(empty).tolist():
        out[i] = _empty_doc(geoms[i])
    rest = np.flatnonzero((type_ids >= 0) & ~empty & ~np.isin(type_ids, list(_GEOJSON_TYPES)))
    if len(rest):
        texts = shapely.to_geojson(geoms[rest])
        for i, text in zip(rest.tolist(), texts.tolist(), strict=True):
            out[i] = orjson.loads(text)
    return out


def _write_group(geoms: np.ndarray, type_id: int, z: bool) -> list[dict[str, Any]]:
    name = _GEOJSON_TYPES[type_id]
    if type_id == 0:
        coords = shapely.get_coordinates(geoms, include_z=z).tolist()
        return [{"type": name, "coordinates": c} for c in coords]
    _, coords, offsets = shapely.to_ragged_array(geoms, include_z=z)
    level: list[Any] = coords.tolist()
    for off in offsets:
        bounds = off.tolist()
        level = [level[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [{"type": name, "coordinates": c} for c in level]


def _empty_doc(geom: shapely.Geometry) -> dict[str, Any]:
    kind = shapely.get_type_id(geom)
    if kind == 7:
        return {"type": "GeometryCollection", "geometries": []}
    return {"type": _GEOJSON_TYPES.get(int(kind), "LineString"), "coordinates": []}


# -- bytes ---------------------------------------------------------------------------


def features_from_json(data: bytes | str, *, name: str = "features") -> Features:
    """Parse feature_collection JSON text (orjson)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{name}: not valid JSON: {exc}") from exc
    return read_features(value, name=name)


def features_to_json(features: Features) -> bytes:
    """Serialize Features as feature_collection JSON (orjson)."""
    return orjson.dumps(write_features(features))
