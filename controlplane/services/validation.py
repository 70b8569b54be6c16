"""Validation of internal input values against a process's parameter specs.

Adapters translate their wire formats into internal values; this module checks those
values before any run exists, so a bad request creates nothing. It also counts features
and vertices for the admission limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.contracts import ParamSpec, ParamType, ProcessSpec
from controlplane.exceptions import (
    InvalidGeometry,
    InvalidParameterValue,
    MissingParameter,
    UnknownParameter,
)
from executors.units import LINEAR_UNITS


@dataclass
class InputStats:
    features: int = 0
    vertices: int = 0


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _position(p: Any) -> bool:
    return isinstance(p, list | tuple) and 2 <= len(p) <= 4 and all(_num(c) for c in p)


def _positions(seq: Any, minimum: int) -> int:
    if not isinstance(seq, list | tuple) or len(seq) < minimum or not all(_position(p) for p in seq):
        raise ValueError(f"needs a list of at least {minimum} positions [x, y]")
    return len(seq)


def _ring(seq: Any) -> int:
    n = _positions(seq, 4)
    if list(seq[0][:2]) != list(seq[-1][:2]):
        raise ValueError("a polygon ring must be closed (first position equal to the last)")
    return n


def geometry_vertices(geom: Any) -> int:
    """Vertex count of a GeoJSON geometry; ValueError with a reason when malformed."""
    if not isinstance(geom, dict):
        raise ValueError("a geometry must be an object with 'type' and 'coordinates'")
    gtype = geom.get("type")
    if gtype == "GeometryCollection":
        parts = geom.get("geometries")
        if not isinstance(parts, list):
            raise ValueError("a GeometryCollection needs 'geometries'")
        return sum(geometry_vertices(g) for g in parts)
    coords = geom.get("coordinates")
    if gtype == "Point":
        if not _position(coords):
            raise ValueError("a Point needs coordinates [x, y]")
        return 1
    if gtype == "MultiPoint":
        return _positions(coords, 0)
    if gtype == "LineString":
        return _positions(coords, 2)
    if gtype in ("MultiLineString", "Polygon"):
        if not isinstance(coords, list):
            raise ValueError(f"a {gtype} needs a list of position lists")
        if gtype == "Polygon":
            if not coords:
                raise ValueError("a Polygon needs at least one ring")
            return sum(_ring(r) for r in coords)
        return sum(_positions(line, 2) for line in coords)
    if gtype == "MultiPolygon":
        if not isinstance(coords, list):
            raise ValueError("a MultiPolygon needs a list of polygons")
        total = 0
        for poly in coords:
            if not isinstance(poly, list) or not poly:
                raise ValueError("each polygon of a MultiPolygon needs at least one ring")
            total += sum(_ring(r) for r in poly)
        return total
    raise ValueError(f"unknown geometry type {gtype!r}")


def _check_geometry_type(spec: ParamSpec, gtype: str, where: str) -> None:
    if spec.geometry_types and gtype not in spec.geometry_types:
        raise InvalidGeometry(
            f"{where}: geometry type {gtype} is not accepted; expected one of "
            + ", ".join(spec.geometry_types)
        )


def _srid(value: dict[str, Any], name: str) -> None:
    srid = value.get("srid", 4326)
    if not isinstance(srid, int) or isinstance(srid, bool) or srid <= 0:
        raise InvalidParameterValue(f"input {name!r}: srid must be a positive EPSG code")


def _feature_collection(spec: ParamSpec, value: Any, stats: InputStats) -> None:
    name = spec.name
    if not isinstance(value, dict) or value.get("type") != "FeatureCollection":
        raise InvalidParameterValue(f"input {name!r} must be a feature collection")
    features = value.get("features")
    if not isinstance(features, list):
        raise InvalidParameterValue(f"input {name!r}: 'features' must be a list")
    _srid(value, name)
    allowed = set(spec.geometry_types)
    isfinite = math.isfinite
    vertices = 0
    for i, feature in enumerate(features):
        if type(feature) is not dict:
            raise InvalidParameterValue(f"input {name!r}: feature {i} is not an object")
        geom = feature.get("geometry")
        props = feature.get("properties")
        if props is not None and type(props) is not dict:
            raise InvalidParameterValue(f"input {name!r}: feature {i} properties must be an object")
        if geom is None:
            continue
        # Points dominate large inputs: check them inline, the general walk does the rest
        # (and words the error when a point is malformed).
        coords = geom.get("coordinates") if type(geom) is dict else None
        if (
            type(coords) is list
            and 2 <= len(coords) <= 4
            and geom.get("type") == "Point"
            and all((type(c) is float or type(c) is int) and isfinite(c) for c in coords)
        ):
            vertices += 1
        else:
            try:
                vertices += geometry_vertices(geom)
            except ValueError as exc:
                raise InvalidGeometry(f"input {name!r}: feature {i}: {exc}") from None
        if allowed and geom["type"] not in allowed:
            _check_geometry_type(spec, geom["type"], f"input {name!r}: feature {i}")
    stats.vertices += vertices
    stats.features += len(features)


def _layer_source(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("source"), dict)
        and isinstance(value.get("count"), int)
        and not isinstance(value.get("count"), bool)
    )


def _single(spec: ParamSpec, value: Any, stats: InputStats) -> Any:
    name, t = spec.name, spec.type
    bad = InvalidParameterValue(f"input {name!r} must be a {t.value.replace('_', ' ')}")
    if t is ParamType.STRING:
        if not isinstance(value, str):
            raise bad
    elif t is ParamType.INTEGER:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad
    elif t is ParamType.NUMBER:
        if not _num(value):
            raise bad
    elif t is ParamType.BOOLEAN:
        if not isinstance(value, bool):
            raise bad
    elif t is ParamType.DATETIME:
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise bad from None
    elif t is ParamType.LINEAR_UNIT:
        if not (isinstance(value, dict) and _num(value.get("value"))):
            raise InvalidParameterValue(f"input {name!r} must be {{value, unit}} with a number")
        if value.get("unit") not in LINEAR_UNITS:
            raise InvalidParameterValue(
                f"input {name!r}: unknown unit {value.get('unit')!r}; use one of "
                + ", ".join(LINEAR_UNITS)
            )
    elif t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION) and _layer_source(value):
        # A catalog layer, resolved by run_submit: counted as the features it selects.
        stats.features += int(value["count"])
        stats.vertices += int(value.get("vertices") or value["count"])
    elif t is ParamType.GEOMETRY:
        if not isinstance(value, dict):
            raise bad
        try:
            stats.vertices += geometry_vertices(value)
        except ValueError as exc:
            raise InvalidGeometry(f"input {name!r}: {exc}") from None
        _check_geometry_type(spec, value["type"], f"input {name!r}")
        _srid(value, name)
        stats.features += 1
    elif t is ParamType.FEATURE_COLLECTION:
        _feature_collection(spec, value, stats)
    elif t is ParamType.BBOX:
        box = value.get("bbox") if isinstance(value, dict) else None
        if not (isinstance(box, list) and len(box) in (4, 6) and all(_num(c) for c in box)):
            raise InvalidParameterValue(f"input {name!r} must be a bbox of 4 or 6 numbers")
        half = len(box) // 2
        if box[1] > box[1 + half]:  # x may wrap across the antimeridian; y may not
            raise InvalidParameterValue(f"input {name!r}: bbox minimum exceeds maximum")
        _srid(value, name)
    elif t is ParamType.SPATIAL_REFERENCE:
        if not (isinstance(value, dict) and (isinstance(value.get("srid"), int) or value.get("wkt"))):
            raise InvalidParameterValue(f"input {name!r} must be a spatial reference {{srid}}")
    elif t in (ParamType.FILE, ParamType.RASTER):
        if not (isinstance(value, dict) and (value.get("href") or value.get("artifact") or value.get("upload") or "value" in value)):
            raise InvalidParameterValue(f"input {name!r} must be a file reference or value")
    elif t is ParamType.OBJECT:
        pass
    if spec.choices and value not in spec.choices:
        raise InvalidParameterValue(
            f"input {name!r}: {value!r} is not one of " + ", ".join(map(str, spec.choices))
        )
    if spec.minimum is not None and _num(value) and value < spec.minimum:
        raise InvalidParameterValue(f"input {name!r} must be at least {spec.minimum}")
    if spec.maximum is not None and _num(value) and value > spec.maximum:
        raise InvalidParameterValue(f"input {name!r} must be at most {spec.maximum}")
    return value


def inputs_validate(spec: ProcessSpec, inputs: dict[str, Any]) -> tuple[dict[str, Any], InputStats]:
    """Checked inputs with defaults applied, and their feature/vertex counts."""
    known = {p.name for p in spec.inputs}
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise UnknownParameter(
            f"unknown input {unknown[0]!r} for process {spec.id!r}; inputs are: " + ", ".join(sorted(known))
        )
    stats = InputStats()
    out: dict[str, Any] = {}
    for param in spec.inputs:
        value = inputs.get(param.name)
        if value is None:
            if param.default is not None:
                out[param.name] = param.default
            elif param.required:
                raise MissingParameter(f"input {param.name!r} is required by process {spec.id!r}")
            continue
        if param.multi:
            values = value if isinstance(value, list) else [value]
            if param.max_items is not None and len(values) > param.max_items:
                raise InvalidParameterValue(f"input {param.name!r} takes at most {param.max_items} values")
            out[param.name] = [_single(param, v, stats) for v in values]
        else:
            if isinstance(value, list) and len(value) == 1 and param.type not in (ParamType.OBJECT,):
                value = value[0]  # OGC allows an array of one for a single value
            out[param.name] = _single(param, value, stats)
    return out, stats
