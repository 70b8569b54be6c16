"""A catalog layer as executors see it: a JSON-safe descriptor and its readers.

A ``LayerSource`` says where a layer's features live (a table of this database, or a file
read through GDAL), which of them are selected (a bbox, a CQL2 filter) and how its
attributes are named. It carries no tenant: the control plane checked access when it made
one. Features are ordered by the layer's id column (files: by their position, 1..n, the
same ids a hosted copy of the file gets). Reads run on the calling thread's Django
connection; SQL is built with ``psycopg.sql`` (identifiers) and bound parameters only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import shapely
from django.db import connection
from psycopg import sql

from executors.base import InvalidInput
from executors.geodata import Features
from executors.layers import filters
from executors.spatialref import transformer

FIELD_TYPES = ("string", "integer", "number", "boolean", "datetime")
# How a filter may use a column of each internal type ("any": as it is).
_FILTER_KINDS = {"string": "text", "integer": "number", "number": "number", "boolean": "boolean", "datetime": "any"}
_BBOX_STEPS = 16  # a bbox in another CRS is densified before it is reprojected
_NUMERIC_TEXT = r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
# GeoJSON type names of shapely type ids, and the multi-type each single type joins.
TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
              6: "MultiPolygon", 7: "GeometryCollection"}
_MULTI = {0: 4, 1: 5, 3: 6}
_MAKE_MULTI = {4: shapely.multipoints, 5: shapely.multilinestrings, 6: shapely.multipolygons}


@dataclass(frozen=True)
class LayerSource:
    """Where a layer's features are and which of them are selected (JSON-safe)."""

    layer: str  # collection id, for messages
    storage: str  # "postgis" | "file"
    label: str  # "table public.roads", "GeoPackage roads.gpkg"
    srid: int
    geometry_type: str = "Geometry"
    fields: tuple[dict[str, str], ...] = ()  # {"name", "column", "type"}
    # postgis
    schema: str = ""
    table: str = ""
    geometry_column: str = ""
    id_column: str = ""
    # file
    path: str = ""  # a local path or a /vsi path
    driver: str = ""
    sublayer: str = ""
    open_options: dict[str, str] = field(default_factory=dict)
    # selection
    bbox: tuple[float, float, float, float] | None = None
    bbox_srid: int = 4326
    filter: dict[str, Any] | None = None  # CQL2-JSON (filters.filter_parse)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["fields"] = [dict(f) for f in self.fields]
        doc["bbox"] = list(self.bbox) if self.bbox is not None else None
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LayerSource:
        try:
            values = dict(doc)
            values["fields"] = tuple(dict(f) for f in values.get("fields") or ())
            bbox = values.get("bbox")
            values["bbox"] = tuple(float(v) for v in bbox) if bbox is not None else None
            values["open_options"] = dict(values.get("open_options") or {})
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"not a layer source descriptor: {exc}") from exc

    def replace(self, **changes: Any) -> LayerSource:
        """A copy with some members changed (e.g. another bbox or filter)."""
        return LayerSource.from_json({**self.to_json(), **changes})

    def field_names(self) -> list[str]:
        return [f["name"] for f in self.fields]


# --- values ------------------------------------------------------------------------------------


def iso_datetime(value: datetime) -> str:
    """RFC 3339 in UTC; naive datetimes (files, ``timestamp`` columns) are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_text(text: str) -> str:
    try:
        return iso_datetime(datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-")))
    except ValueError:
        return text


def json_value(value: Any, type_: str) -> Any:
    """A column or GDAL value as the JSON value of its internal field type."""
    if value is None:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if type_ == "integer":
        return int(value)
    if type_ == "number":
        return float(value)
    if type_ == "boolean":
        return bool(value)
    if type_ == "datetime":
        if isinstance(value, datetime):
            return iso_datetime(value)
        return _iso_text(str(value))
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value if isinstance(value, str) else str(value)


def geometries_normalise(geoms: np.ndarray) -> tuple[np.ndarray, str]:
    """Mixed single and multi types of one family as the multi-type (Polygon + MultiPolygon
    -> MultiPolygon); one type as it is; truly mixed types kept as they are ("Geometry")."""
    present = ~shapely.is_missing(geoms)
    type_ids = set(shapely.get_type_id(geoms[present]).tolist())
    if not type_ids:
        return geoms, "Geometry"
    if len(type_ids) == 1:
        return geoms, TYPE_NAMES.get(type_ids.pop(), "Geometry")
    multis = {_MULTI.get(t, t) for t in type_ids}
    if len(multis) != 1 or (multi := multis.pop()) not in _MAKE_MULTI:
        return geoms, "Geometry"
    out = np.array(geoms, dtype=object)
    singles = np.flatnonzero(present & np.isin(shapely.get_type_id(geoms), list(_MULTI)))
    out[singles] = _MAKE_MULTI[multi](geoms[singles], indices=np.arange(len(singles)))
    return out, TYPE_NAMES[multi]


def geometries_as(geoms: np.ndarray, geometry_type: str) -> np.ndarray:
    """Single geometries promoted to the layer's multi-type (as ingest normalised them)."""
    multi = next((k for k, v in TYPE_NAMES.items() if v == geometry_type), None)
    if multi not in _MAKE_MULTI or not len(geoms):
        return geoms
    singles = np.flatnonzero(~shapely.is_missing(geoms) & (shapely.get_type_id(geoms) == next(
        s for s, m in _MULTI.items() if m == multi)))
    if not len(singles):
        return geoms
    out = np.array(geoms, dtype=object)
    out[singles] = _MAKE_MULTI[multi](geoms[singles], indices=np.arange(len(singles)))
    return out


# --- bbox ------------------------------------------------------------------------------------


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise InvalidInput("a bbox has four finite numbers: minx, miny, maxx, maxy")
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if minx > maxx or miny > maxy:
        raise InvalidInput("a bbox needs minx <= maxx and miny <= maxy")
    return minx, miny, maxx, maxy


def _segment(bbox: tuple[float, float, float, float]) -> float:
    return max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / _BBOX_STEPS


def bbox_polygon(source: LayerSource) -> shapely.Geometry | None:
    """The selection bbox as a polygon in the layer's CRS (densified, then reprojected, as
    the SQL of a postgis layer does), or None."""
    if source.bbox is None:
        return None
    bbox = _check_bbox(source.bbox)
    box = shapely.box(*bbox)
    if source.bbox_srid == source.srid:
        return box
    if _segment(bbox) > 0:
        box = shapely.segmentize(box, _segment(bbox))
    coords = shapely.get_coordinates(box)
    x, y = transformer(source.bbox_srid, source.srid).transform(coords[:, 0], coords[:, 1])
    return shapely.polygons(np.column_stack([x, y]))


# --- postgis layers --------------------------------------------------------------------------


def _field_column(source: LayerSource, name: str, kind: str) -> sql.Composable:
    spec = next((f for f in source.fields if f["name"] == name), None)
    if spec is None:
        raise InvalidInput(
            f"layer {source.layer!r} has no property {name!r}; its properties: "
            + (", ".join(source.field_names()) or "none")
        )
    column = sql.Identifier(spec.get("column") or name)
    have = _FILTER_KINDS.get(spec.get("type", "string"), "any")
    if kind in ("any", have):
        return column
    if kind == "text":
        return sql.SQL("({}::text)").format(column)
    if kind == "number" and have == "text":
        # Only plain decimal numbers compare as numbers (as filters.filter_mask reads them).
        return sql.SQL("(CASE WHEN {c} ~ {p} THEN {c}::numeric END)").format(c=column, p=sql.Literal(_NUMERIC_TEXT))
    if kind == "boolean" and spec.get("type") == "integer":
        return sql.SQL("(CASE WHEN {c} IN (0, 1) THEN {c} = 1 END)").format(c=column)
    return sql.SQL("NULL::boolean") if kind == "boolean" else sql.SQL("NULL::numeric")


def _where(source: LayerSource) -> tuple[sql.Composable, list[Any]]:
    geom = sql.Identifier(source.geometry_column)
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if source.bbox is not None:
        bbox = _check_bbox(source.bbox)
        envelope: sql.Composable = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, %s)")
        params_env: list[Any] = [*bbox, source.bbox_srid]
        if source.bbox_srid != source.srid:
            if _segment(bbox) > 0:
                envelope = sql.SQL("ST_Segmentize({}, %s::float8)").format(envelope)
                params_env.append(_segment(bbox))
            envelope = sql.SQL("ST_Transform({}, %s)").format(envelope)
            params_env.append(source.srid)
        parts.append(sql.SQL("ST_Intersects({}, {})").format(geom, envelope))
        params += params_env
    if source.filter is not None:
        clause, filter_params = filters.filter_sql(
            source.filter,
            column=lambda name, kind: _field_column(source, name, kind),
            geometry=geom,
            srid=source.srid,
        )
        parts.append(sql.SQL("({})").format(clause))
        params += list(filter_params)
    if not parts:
        return sql.SQL(""), []
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def _table(source: LayerSource) -> sql.Composable:
    return sql.Identifier(source.schema, source.table)


def _select_column(spec: dict[str, str]) -> sql.Composable:
    column = sql.Identifier(spec.get("column") or spec["name"])
    if spec.get("type") == "string" and spec.get("cast") == "text":
        return sql.SQL("{}::text").format(column)
    return column


def _cursor() -> psycopg.Cursor[Any]:
    connection.ensure_connection()
    raw = connection.connection
    return psycopg.Cursor(raw)


def _read_postgis(source: LayerSource, limit: int | None, offset: int) -> Features:
    where, params = _where(source)
    columns = [_select_column(f) for f in source.fields]
    query = sql.SQL("SELECT {id}, ST_AsBinary({geom}){cols} FROM {table}{where} ORDER BY {id}").format(
        id=sql.Identifier(source.id_column),
        geom=sql.Identifier(source.geometry_column),
        cols=sql.SQL("").join(sql.SQL(", ") + c for c in columns),
        table=_table(source),
        where=where,
    )
    if limit is not None:
        query += sql.SQL(" LIMIT %s")
        params.append(int(limit))
    if offset:
        query += sql.SQL(" OFFSET %s")
        params.append(int(offset))
    with _cursor() as cur:
        cur.execute(query, params, binary=True)
        rows = cur.fetchall()
    types = [f.get("type", "string") for f in source.fields]
    names = source.field_names()
    geoms = shapely.from_wkb(np.array([r[1] for r in rows], dtype=object)) if rows else np.empty(0, dtype=object)
    props = [
        {n: json_value(v, t) for n, v, t in zip(names, r[2:], types, strict=True)} for r in rows
    ]
    ids = [json_value(r[0], "integer") if isinstance(r[0], int) else str(r[0]) for r in rows]
    return Features(
        geometries=np.asarray(geoms, dtype=object),
        properties=props,
        ids=ids,
        srid=source.srid,
        fields=[{"name": f["name"], "type": f.get("type", "string")} for f in source.fields],
    )


def _count_postgis(source: LayerSource) -> int:
    where, params = _where(source)
    query = sql.SQL("SELECT count(*) FROM {table}{where}").format(table=_table(source), where=where)
    with _cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    return int(row[0]) if row else 0


def source_geometries_sql(source: LayerSource) -> tuple[sql.Composed, list[Any]]:
    """A SELECT of (ordinal bigint 1.., geom in the layer's SRID) of the selected features,
    in id order, for statements that keep the data in the database (postgis layers only)."""
    if source.storage != "postgis":
        raise InvalidInput(f"layer {source.layer!r} is a file ({source.label}), not a table of this database")
    where, params = _where(source)
    query = sql.SQL(
        "SELECT (row_number() OVER (ORDER BY {id}))::bigint AS ordinal, {geom} AS geom FROM {table}{where}"
    ).format(
        id=sql.Identifier(source.id_column),
        geom=sql.Identifier(source.geometry_column),
        table=_table(source),
        where=where,
    )
    return query, params


# --- file layers -----------------------------------------------------------------------------


def _read_file_all(source: LayerSource, *, skip: int = 0, max_features: int | None = None) -> Features:
    import pyogrio.raw
    from pyogrio.errors import DataLayerError, DataSourceError

    kwargs: dict[str, Any] = {}
    if source.sublayer:
        kwargs["layer"] = source.sublayer
    polygon = bbox_polygon(source)
    if polygon is not None:
        kwargs["bbox"] = tuple(float(v) for v in shapely.bounds(polygon))
    elif skip or max_features is not None:
        kwargs["skip_features"] = skip
        if max_features is not None:
            kwargs["max_features"] = max_features
    columns = [f.get("column") or f["name"] for f in source.fields]
    try:
        meta, fids, wkb, data = pyogrio.raw.read(
            source.path,
            columns=columns,
            return_fids=True,
            datetime_as_string=True,
            force_2d=True,
            **kwargs,
            **source.open_options,
        )
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidInput(f"layer {source.layer!r} ({source.label}) cannot be read: {exc}") from exc
    count = len(fids)
    geoms = shapely.from_wkb(wkb) if count else np.empty(0, dtype=object)
    geoms = geometries_as(np.asarray(geoms, dtype=object), source.geometry_type)
    by_column = {str(name): values for name, values in zip(meta["fields"], data, strict=True)}
    types = [f.get("type", "string") for f in source.fields]
    columns_data = [by_column[c] for c in columns]
    props = [
        {f["name"]: json_value(col[i], t) for f, col, t in zip(source.fields, columns_data, types, strict=True)}
        for i in range(count)
    ]
    # Ids are positions in the file (1..n), as a hosted copy numbers them: GDAL's FIDs start
    # at 0 or 1 by driver. A bbox read skips features, so their positions come from the FIDs.
    first = _first_fid(source)
    ids = [int(f) - first + 1 for f in fids] if polygon is not None else list(range(skip + 1, skip + count + 1))
    features = Features(
        geometries=np.asarray(geoms, dtype=object),
        properties=props,
        ids=ids,
        srid=source.srid,
        fields=[{"name": f["name"], "type": f.get("type", "string")} for f in source.fields],
    )
    if polygon is not None and count:
        # A spatial index (GeoPackage R-tree) hands features over in its own order.
        order = np.argsort(np.asarray(ids), kind="stable")
        features = features.take(order)
        props = features.properties
    keep = np.ones(count, dtype=bool)
    if polygon is not None and count:
        keep &= np.asarray(shapely.intersects(features.geometries, polygon), dtype=bool)
    if source.filter is not None and count:
        keep &= np.asarray(
            filters.filter_mask(source.filter, props, features.geometries, srid=source.srid), dtype=bool
        )
    if not keep.all():
        features = features.take(np.flatnonzero(keep))
    return features


def _first_fid(source: LayerSource) -> int:
    import pyogrio.raw

    kwargs: dict[str, Any] = {"layer": source.sublayer} if source.sublayer else {}
    _, fids, _, _ = pyogrio.raw.read(
        source.path, read_geometry=False, columns=[], return_fids=True, max_features=1,
        **kwargs, **source.open_options,
    )
    return int(fids[0]) if len(fids) else 0


# --- entry points ----------------------------------------------------------------------------


def source_read(source: LayerSource, *, limit: int | None = None, offset: int = 0) -> Features:
    """The selected features of a layer, ordered by id, from ``offset``, at most ``limit``."""
    if limit is not None and limit < 0 or offset < 0:
        raise InvalidInput("limit and offset must not be negative")
    if source.storage == "postgis":
        return _read_postgis(source, limit, offset)
    if source.storage != "file":
        raise InvalidInput(f"layer {source.layer!r} has an unknown storage {source.storage!r}")
    if source.bbox is None and source.filter is None:
        return _read_file_all(source, skip=offset, max_features=limit)
    features = _read_file_all(source)
    end = None if limit is None else offset + limit
    return features.take(np.arange(len(features))[offset:end])


def source_count(source: LayerSource) -> int:
    """How many features the source selects."""
    if source.storage == "postgis":
        return _count_postgis(source)
    if source.bbox is None and source.filter is None:
        import pyogrio

        kwargs: dict[str, Any] = {"layer": source.sublayer} if source.sublayer else {}
        info = pyogrio.read_info(source.path, **kwargs, **source.open_options)
        if int(info.get("features", -1)) >= 0:
            return int(info["features"])
    return len(_read_file_all(source))
