"""Typed readers of internal input values (defaults applied; wrong values -> InvalidInput)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from executors.base import InvalidInput
from executors.geodata import Features, read_features, read_geometry
from executors.spatialref import srid_of
from executors.units import LINEAR_UNITS

_MISSING = object()


@dataclass(frozen=True)
class LinearUnit:
    """A distance: ``value`` in ``unit`` (a LINEAR_UNITS name; "degree" is planar degrees)."""

    value: float
    unit: str

    @property
    def is_angular(self) -> bool:
        return self.unit == "degree"

    @property
    def meters(self) -> float:
        return self.value * LINEAR_UNITS[self.unit]

    @property
    def base(self) -> float:
        """The value in metres, or in degrees for an angular unit."""
        return self.value if self.is_angular else self.meters


def _get(inputs: Mapping[str, Any], name: str, default: Any) -> Any:
    value = inputs.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise InvalidInput(f"missing input '{name}'")
        return default
    return value


def features(inputs: Mapping[str, Any], name: str = "features") -> Features:
    """A feature_collection input (a single Feature or geometry value is accepted too)."""
    return read_features(_get(inputs, name, _MISSING), name=name)


def optional_features(inputs: Mapping[str, Any], name: str) -> Features | None:
    value = inputs.get(name)
    return None if value is None else read_features(value, name=name)


def geometry(inputs: Mapping[str, Any], name: str) -> tuple[shapely.Geometry, int]:
    return read_geometry(_get(inputs, name, _MISSING), name=name)


def linear_unit(
    inputs: Mapping[str, Any], name: str, default: Mapping[str, Any] | None = None
) -> LinearUnit:
    value = _get(inputs, name, _MISSING if default is None else default)
    if isinstance(value, bool):
        raise InvalidInput(f"{name}: expected {{'value', 'unit'}}")
    if isinstance(value, int | float):
        value = {"value": value, "unit": "meter"}
    if not isinstance(value, Mapping) or "value" not in value:
        raise InvalidInput(f"{name}: expected {{'value': <number>, 'unit': <unit>}}")
    unit = value.get("unit", "meter")
    if unit not in LINEAR_UNITS:
        raise InvalidInput(f"{name}: unknown unit {unit!r}; use one of {', '.join(LINEAR_UNITS)}")
    number_ = _finite_number(value["value"], name)
    return LinearUnit(number_, unit)


def number(
    inputs: Mapping[str, Any],
    name: str,
    default: Any = _MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = _finite_number(_get(inputs, name, default), name)
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name}: must be at most {maximum}")
    return value


def integer(
    inputs: Mapping[str, Any],
    name: str,
    default: Any = _MISSING,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = number(inputs, name, default, minimum=minimum, maximum=maximum)
    if value != int(value):
        raise InvalidInput(f"{name}: must be an integer")
    return int(value)


def boolean(inputs: Mapping[str, Any], name: str, default: bool) -> bool:
    value = _get(inputs, name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"{name}: expected a boolean")


def choice(inputs: Mapping[str, Any], name: str, choices: Sequence[str], default: str) -> str:
    value = _get(inputs, name, default)
    if value not in choices:
        raise InvalidInput(f"{name}: expected one of {', '.join(choices)}; got {value!r}")
    return str(value)


def string(inputs: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = inputs.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a string")
    return value


def srid(inputs: Mapping[str, Any], name: str) -> int | None:
    value = inputs.get(name)
    return None if value is None else srid_of(value)


def bbox(inputs: Mapping[str, Any], name: str) -> tuple[shapely.Geometry, int] | None:
    """A bbox input as a rectangle polygon and its srid."""
    value = inputs.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping) or "bbox" not in value:
        raise InvalidInput(f"{name}: expected {{'bbox': [minx, miny, maxx, maxy], 'srid': ...}}")
    box = value["bbox"]
    if not isinstance(box, list | tuple) or len(box) not in (4, 6):
        raise InvalidInput(f"{name}: bbox must have 4 numbers")
    nums = [_finite_number(v, name) for v in box]
    minx, miny, maxx, maxy = (nums[0], nums[1], nums[3], nums[4]) if len(nums) == 6 else nums
    if minx > maxx:  # a lon/lat box across the antimeridian; frames take longitudes past 180
        maxx += 360.0
    if minx >= maxx or miny >= maxy:
        raise InvalidInput(f"{name}: bbox minimum must be below maximum")
    return shapely.box(minx, miny, maxx, maxy), srid_of(value.get("srid", 4326))


def _finite_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InvalidInput(f"{name}: expected a number")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidInput(f"{name}: must be finite")
    return result
