"""The postgis tier's allow-list: handler name -> SQL function in ``honua_gp`` and the
builder of its bound arguments. A handler that is not listed here is refused.

Statements are composed only from this module's constants; every value from the inputs is
a bound parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from executors.attributes import numeric_values
from executors.base import InvalidInput
from executors.geodata import Features
from executors.grids import max_cells
from executors.spatialref import WEB_MERCATOR_SRIDS
from executors.units import LINEAR_UNITS

METHODS = ("auto", "planar", "geodesic")
KMEANS_MAX_K = 1000  # the catalog's maximum of kmeans' k
CAP_STYLES = ("round", "flat", "square")
JOIN_STYLES = ("round", "mitre", "bevel")

# How the rows of a function become the ``result`` feature collection.
GEOMETRY_PER_INPUT = "geometry"  # (ordinal, geom): a new geometry per input (NULL: dissolved)
VALUE_PER_INPUT = "value"  # (ordinal, value, geom): the input feature plus one property
NEW_FEATURES = "new"  # (ordinal, geom, *columns): new features, not one per input


@dataclass(frozen=True)
class Frame:
    """The CRS a call computes in (the working SRID)."""

    srid: int
    geographic: bool
    metres_per_unit: float  # of a projected CRS; NaN for a geographic one


@cache
def frame_for(srid: int) -> Frame:
    """The working frame of an EPSG code; InvalidInput when pyproj does not know it."""
    try:
        crs = CRS.from_epsg(int(srid))
    except (CRSError, TypeError, ValueError) as exc:
        raise InvalidInput(f"unknown spatial reference EPSG:{srid}") from exc
    if crs.is_geographic:
        return Frame(int(srid), True, math.nan)
    if not crs.is_projected:
        raise InvalidInput(f"EPSG:{srid} is neither geographic nor projected")
    return Frame(int(srid), False, float(crs.axis_info[0].unit_conversion_factor))


@dataclass(frozen=True)
class Column:
    """A column of a NEW_FEATURES function and the property it becomes. ``requires``: the
    property is written only when that input is given."""

    sql: str
    prop: str
    type: str  # "integer" | "number" | "string"
    requires: str | None = None


@dataclass(frozen=True)
class SqlFunction:
    """One allow-listed SQL function: ``function(wkb bytea[], srid integer, *args)``; ``args``
    are build()'s, then extra_args()'s (values read from the features' properties and the
    run's limits)."""

    handler: str
    function: str
    arg_types: tuple[str, ...]
    build: Callable[[Mapping[str, Any], Frame], tuple[Any, ...]]
    output: str
    value_property: str | None = None
    value_type: str | None = None
    value_default: Any = None
    features_input: str = "features"
    dissolve_arg: int | None = None  # index in build()'s tuple of a "dissolve into one" flag
    columns: tuple[Column, ...] = ()  # of a NEW_FEATURES function, after its geom
    extra_args: (
        Callable[[Mapping[str, Any], Features, Mapping[str, Any]], tuple[Any, ...]] | None
    ) = None

    def columns_for(self, inputs: Mapping[str, Any]) -> tuple[Column, ...]:
        """The columns written as properties for these inputs."""
        return tuple(c for c in self.columns if c.requires is None or inputs.get(c.requires))

    def statement(self, *, reproject_input: bool, geometry_out: str) -> str:
        """The SELECT calling the function. ``geometry_out``: "as_is" | "transform" | "none"."""
        return _statement(self.handler, reproject_input, geometry_out)

    def layer_statement(self, *, geometry_out: str) -> tuple[str, str]:
        """The SELECT calling the function over a layer: the text before and after the
        geometry array, which the caller composes from the layer's subquery."""
        head, _, tail = _statement(self.handler, False, geometry_out).partition("%s::bytea[]")
        return head, tail


@cache
def _statement(handler: str, reproject_input: bool, geometry_out: str) -> str:
    fn = FUNCTIONS[handler]
    if reproject_input:
        # params: input srid, working srid, wkb[]
        geoms = (
            "ARRAY(SELECT ST_AsBinary(ST_Transform(ST_GeomFromWKB(u.w, %s::integer), %s::integer))"
            " FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(w, o) ORDER BY u.o)"
        )
    else:
        geoms = "%s::bytea[]"
    args = ", ".join([geoms, "%s::integer", *(f"%s::{t}" for t in fn.arg_types)])
    geometry = {
        "as_is": "ST_AsBinary(r.geom)",
        "transform": "ST_AsBinary(ST_Transform(r.geom, %s::integer))",
        "none": "NULL::bytea",
    }[geometry_out]
    if fn.output == VALUE_PER_INPUT:
        columns = f"r.ordinal, {geometry}, r.{fn.value_property}"
    elif fn.output == NEW_FEATURES:
        columns = ", ".join(["r.ordinal", geometry, *(f"r.{c.sql}" for c in fn.columns)])
    else:
        columns = f"r.ordinal, {geometry}"
    return f"SELECT {columns} FROM {fn.function}({args}) AS r"


# -- argument readers ----------------------------------------------------------------


def _value(inputs: Mapping[str, Any], name: str, default: Any) -> Any:
    value = inputs.get(name)
    return default if value is None else value


def _linear_unit(inputs: Mapping[str, Any], name: str) -> tuple[float, str]:
    value = inputs.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = {"value": value, "unit": "meter"}
    if not isinstance(value, Mapping) or "value" not in value:
        raise InvalidInput(f"{name}: expected {{'value': <number>, 'unit': <unit>}}")
    number = _number(value["value"], name)
    unit = value.get("unit", "meter")
    if unit not in LINEAR_UNITS:
        raise InvalidInput(f"{name}: unknown unit {unit!r}; use one of {', '.join(LINEAR_UNITS)}")
    return number, unit


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name}: expected a number")
    if not math.isfinite(value):
        raise InvalidInput(f"{name}: must be finite")
    return float(value)


def _integer(inputs: Mapping[str, Any], name: str, default: Any, minimum: int, maximum: int) -> int:
    value = _number(_value(inputs, name, default), name)
    if value != int(value) or not minimum <= value <= maximum:
        raise InvalidInput(f"{name}: expected an integer from {minimum} to {maximum}")
    return int(value)


def _choice(inputs: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = _value(inputs, name, default)
    if value not in choices:
        raise InvalidInput(f"{name}: expected one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _boolean(inputs: Mapping[str, Any], name: str, default: bool) -> bool:
    value = _value(inputs, name, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidInput(f"{name}: expected a boolean")
    return value


def distance_in_frame(
    value: float, unit: str, method: str, frame: Frame, name: str
) -> tuple[float, str]:
    """A distance as the SQL functions take it, with their ``p_method``: ground metres
    (geographic data, ``geodesic``, or ``auto`` on Web Mercator, as
    :func:`executors.spatialref.ground_distances`) or the CRS's own unit ("degree": planar
    degrees)."""
    if unit == "degree":
        if not frame.geographic:
            raise InvalidInput(
                f"{name}: a distance in degrees needs geographic data; EPSG:{frame.srid} is projected"
            )
        return value, "planar"
    metres = value * LINEAR_UNITS[unit]
    if frame.geographic:
        return metres, "auto"
    if method == "geodesic" or (method == "auto" and frame.srid in WEB_MERCATOR_SRIDS):
        return metres, "geodesic"
    return metres / frame.metres_per_unit, "planar"


def _bbox_in(value: Any, frame: Frame, name: str) -> list[float]:
    """A bbox input as [xmin, ymin, xmax, ymax] in the working CRS (bounds of the
    reprojected box when it comes in another CRS)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("bbox"), list | tuple):
        raise InvalidInput(f"{name}: expected {{'bbox': [minx, miny, maxx, maxy], 'srid': ...}}")
    box = [_number(v, name) for v in value["bbox"]]
    if len(box) == 6:
        box = [box[0], box[1], box[3], box[4]]
    if len(box) != 4:
        raise InvalidInput(f"{name}: a bbox has 4 numbers")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise InvalidInput(f"{name}: bbox minimum must be below maximum")
    srid = value.get("srid", 4326)
    if srid != frame.srid:
        frame_for(srid)
        tr = Transformer.from_crs(CRS.from_epsg(srid), CRS.from_epsg(frame.srid), always_xy=True)
        box = list(tr.transform_bounds(box[0], box[1], box[2], box[3], densify_pts=21))
    if not (box[0] < box[2] and box[1] < box[3]) or not all(map(math.isfinite, box)):
        raise InvalidInput(f"{name}: bbox minimum must be below maximum")
    return box


def extent_in(value: Any, srid: int, name: str = "extent") -> list[float]:
    """A bbox input as [xmin, ymin, xmax, ymax] in EPSG ``srid`` (as the SQL functions get it)."""
    return _bbox_in(value, frame_for(srid), name)


# -- argument builders (after wkb[] and srid) ----------------------------------------


def _buffer_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    value, unit = _linear_unit(inputs, "distance")
    method = _choice(inputs, "method", METHODS, "auto")
    distance, sql_method = distance_in_frame(value, unit, method, frame, "distance")
    return (
        distance,
        _integer(inputs, "quad_segs", 8, 1, 1000),
        _choice(inputs, "cap_style", CAP_STYLES, "round"),
        _choice(inputs, "join_style", JOIN_STYLES, "round"),
        _number(_value(inputs, "mitre_limit", 5.0), "mitre_limit"),
        _boolean(inputs, "dissolve", False),
        sql_method,
    )


def snapping_tolerance(inputs: Mapping[str, Any], frame: Frame) -> float:
    """The ``tolerance`` input of voronoi (0 when absent: the SQL's relative minimum, 1e-9 of
    the seeds' extent diagonal, applies): metres of the working frame for geographic data,
    the CRS's own unit for projected data (a snapping distance in the plane the cells are
    built in)."""
    if inputs.get("tolerance") is None:
        return 0.0
    value, unit = _linear_unit(inputs, "tolerance")
    if unit == "degree":
        raise InvalidInput("tolerance: give a length (meter, foot...), not degrees")
    if value < 0:
        raise InvalidInput("tolerance: must not be negative")
    metres = value * LINEAR_UNITS[unit]
    return metres if frame.geographic else metres / frame.metres_per_unit


def _voronoi_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    extent = inputs.get("extent")
    tolerance = snapping_tolerance(inputs, frame)
    if extent is not None:
        return (_bbox_in(extent, frame, "extent"), None, None, tolerance)
    # As the in-process tier: the seeds' bounding box grown by 10 % on each side.
    return (None, None, 0.1, tolerance)


def _dbscan_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    value, unit = _linear_unit(inputs, "eps")
    if value < 0:
        raise InvalidInput("eps: must not be negative")
    method = _choice(inputs, "method", METHODS, "auto")
    eps, sql_method = distance_in_frame(value, unit, method, frame, "eps")
    return (eps, _integer(inputs, "min_points", 5, 1, 1_000_000), sql_method)


def _delaunay_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    return (snapping_tolerance(inputs, frame), _boolean(inputs, "only_edges", False))


def _kmeans_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    return (
        _integer(inputs, "k", None, 1, KMEANS_MAX_K),
        _choice(inputs, "method", METHODS, "auto"),
    )


def _cluster_within_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    value, unit = _linear_unit(inputs, "distance")
    if value < 0:
        raise InvalidInput("distance: must not be negative")
    method = _choice(inputs, "method", METHODS, "auto")
    return distance_in_frame(value, unit, method, frame, "distance")


def _cell_size(inputs: Mapping[str, Any], name: str, frame: Frame) -> float:
    """A grid's cell size in the working frame: metres for geographic data (the SQL
    functions grid them in a local metric frame), the CRS's unit for projected data."""
    value, unit = _linear_unit(inputs, name)
    return frame_length(value, unit, frame, name)


def frame_length(value: float, unit: str, frame: Frame, name: str) -> float:
    """A positive length in the grid functions' working frame (not degrees)."""
    if unit == "degree":
        raise InvalidInput(f"{name}: give a length (meter, foot...), not degrees")
    if not value > 0:
        raise InvalidInput(f"{name}: must be positive")
    metres = value * LINEAR_UNITS[unit]
    return metres if frame.geographic else metres / frame.metres_per_unit


def _hexbin_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    return (_cell_size(inputs, "cell_size", frame), _boolean(inputs, "include_empty", False))


def _hexbin_extra(
    inputs: Mapping[str, Any], features: Features, limits: Mapping[str, Any]
) -> tuple[Any, ...]:
    field = inputs.get("sum_field")
    values = None
    if field:
        values = _nullable(numeric_values(features, _field_name(field, "sum_field")))
    return (values, max_cells(limits))


def _idw_args(inputs: Mapping[str, Any], frame: Frame) -> tuple[Any, ...]:
    radius = None
    if inputs.get("search_radius") is not None:
        value, unit = _linear_unit(inputs, "search_radius")
        radius = frame_length(value, unit, frame, "search_radius")
    power = _number(_value(inputs, "power", 2.0), "power")
    if not 0 <= power <= 10:
        raise InvalidInput("power: expected a number from 0 to 10")
    extent = inputs.get("extent")
    return (
        _cell_size(inputs, "cell_size", frame),
        power,
        radius,
        _integer(inputs, "max_neighbors", 12, 1, 10_000),
        None if extent is None else _bbox_in(extent, frame, "extent"),
    )


def _idw_extra(
    inputs: Mapping[str, Any], features: Features, limits: Mapping[str, Any]
) -> tuple[Any, ...]:
    name = _field_name(inputs.get("value_field"), "value_field")
    values = numeric_values(features, name)
    if not np.isfinite(values).any():
        raise InvalidInput(f"value_field: no feature has a numeric {name!r}")
    return (_nullable(values), max_cells(limits))


def _field_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name}: expected the name of a numeric property")
    return value


def _nullable(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


FUNCTIONS: dict[str, SqlFunction] = {
    f.handler: f
    for f in (
        SqlFunction(
            handler="buffer",
            function="honua_gp.buffer",
            arg_types=(
                "double precision",
                "integer",
                "text",
                "text",
                "double precision",
                "boolean",
                "text",
            ),
            build=_buffer_args,
            output=GEOMETRY_PER_INPUT,
            dissolve_arg=5,
        ),
        SqlFunction(
            handler="voronoi",
            function="honua_gp.voronoi",
            arg_types=(
                "double precision[]",
                "double precision",
                "double precision",
                "double precision",
            ),
            build=_voronoi_args,
            output=GEOMETRY_PER_INPUT,
        ),
        SqlFunction(
            handler="dbscan",
            function="honua_gp.dbscan",
            arg_types=("double precision", "integer", "text"),
            build=_dbscan_args,
            output=VALUE_PER_INPUT,
            value_property="cluster_id",
            value_type="integer",
            value_default=-1,  # noise, as Esri's density-based clustering
        ),
        SqlFunction(
            handler="delaunay",
            function="honua_gp.delaunay",
            arg_types=("double precision", "boolean"),
            build=_delaunay_args,
            output=NEW_FEATURES,
        ),
        SqlFunction(
            handler="kmeans",
            function="honua_gp.kmeans",
            arg_types=("integer", "text"),
            build=_kmeans_args,
            output=VALUE_PER_INPUT,
            value_property="cluster_id",
            value_type="integer",
            value_default=-1,  # no geometry: in no cluster
        ),
        SqlFunction(
            handler="cluster_within",
            function="honua_gp.cluster_within",
            arg_types=("double precision", "text"),
            build=_cluster_within_args,
            output=VALUE_PER_INPUT,
            value_property="cluster_id",
            value_type="integer",
            value_default=-1,  # no geometry: in no cluster
        ),
        SqlFunction(
            handler="hexbin",
            function="honua_gp.hexbin",
            arg_types=("double precision", "boolean", "double precision[]", "integer"),
            build=_hexbin_args,
            extra_args=_hexbin_extra,
            output=NEW_FEATURES,
            columns=(
                Column("grid_column", "grid_column", "integer"),
                Column("grid_row", "grid_row", "integer"),
                Column("point_count", "count", "integer"),
                Column("value_sum", "sum", "number", requires="sum_field"),
                Column("value_mean", "mean", "number", requires="sum_field"),
            ),
        ),
        SqlFunction(
            handler="idw",
            function="honua_gp.idw",
            arg_types=(
                "double precision",
                "double precision",
                "double precision",
                "integer",
                "double precision[]",
                "double precision[]",
                "integer",
            ),
            build=_idw_args,
            extra_args=_idw_extra,
            output=NEW_FEATURES,
            columns=(
                Column("grid_column", "grid_column", "integer"),
                Column("grid_row", "grid_row", "integer"),
                Column("value", "value", "number"),
            ),
        ),
    )
}


def function_for(handler: str) -> SqlFunction | None:
    """The allow-listed function of a handler, or None."""
    return FUNCTIONS.get(handler)
