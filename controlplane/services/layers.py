"""The layer catalog: register operator tables, ingest files (GDAL), publish results, delete.

Three kinds of layer (``Layer.kind``): ``table``, a table of this database an operator
allowed (``HONUA_LAYER_TABLES``); ``hosted``, a table Honua made in schema ``honua_data``
from an ingested file or a run's output; ``file``, a file kept in the artifact store and
read through GDAL at each use. Files are read with ``pyogrio.raw`` and typed by their
content, never their name. A hosted layer's row and table are created in one transaction.
"""

from __future__ import annotations

import io
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql
from pyproj import CRS
from pyproj.exceptions import CRSError

from controlplane.contracts import LayerInfo, Principal
from controlplane.exceptions import (
    InvalidParameterValue,
    NoSuchLayer,
    PayloadTooLarge,
    PermissionDenied,
    UnsupportedMediaType,
)
from controlplane.models import Artifact, Layer
from controlplane.models.layers import COLLECTION_ID_RE, HOSTED_SCHEMA
from controlplane.services.artifacts import (
    artifact_create,
    artifact_local_path,
    artifact_store_delete,
)
from controlplane.services.audit import audit_record
from controlplane.services.mediatypes import media_type_sniff
from executors.base import InvalidInput
from executors.geodata import read_features
from executors.layers.source import (
    TYPE_NAMES,
    LayerSource,
    geometries_normalise,
    iso_datetime,
    json_value,
)
from executors.spatialref import transformer

WRITER_ROLES = ("editor", "admin")

_PG_COLUMN_TYPES = {"string": "text", "integer": "bigint", "number": "double precision", "boolean": "boolean",
                    "datetime": "timestamptz"}
_RESERVED_COLUMNS = {"fid", "geom"}
# CSV coordinate columns GDAL is told to look for (its X/Y_POSSIBLE_NAMES), by CRS kind.
_CSV_LONLAT = (("lon", "lat"), ("long", "lat"), ("lng", "lat"), ("longitude", "latitude"))
_CSV_XY = (("x", "y"), ("easting", "northing"), ("east", "north"))
_CSV_WKT = ("wkt", "geom", "geometry", "the_geom", "wkt_geom", "shape")
_FORMAT_NAMES = {
    "GPKG": "GeoPackage",
    "ESRI Shapefile": "Shapefile",
    "GeoJSON": "GeoJSON",
    "CSV": "CSV",
    "KML": "KML",
    "FlatGeobuf": "FlatGeobuf",
}


# --- settings ----------------------------------------------------------------------------------


def _max_bytes() -> int:
    return int(settings.HONUA.get("LAYER_MAX_BYTES") or 200 * 1024 * 1024)


def _max_features() -> int:
    return int(settings.HONUA.get("LAYER_MAX_FEATURES") or 1_000_000)


def _allowed_tables() -> list[str]:
    return [t.strip() for t in settings.HONUA.get("LAYER_TABLES") or [] if t.strip()]


_NEVER_TABLE_SCHEMAS = frozenset({"honua_data", "honua_gp", "information_schema"})


def table_allowed(schema: str, table: str) -> bool:
    """Is ``schema.table`` on the operator allow-list (``schema.table`` or ``schema.*``)?

    Honua's own schemas (hosted layers of every tenant, the tier's functions) and the
    system catalogs never are, whatever the list says: a table layer must not become a
    door to another tenant's hosted data."""
    if schema in _NEVER_TABLE_SCHEMAS or schema.startswith("pg_"):
        return False
    for entry in _allowed_tables():
        want_schema, _, want_table = entry.partition(".")
        if want_schema == schema and want_table in ("*", table):
            return True
    return False


# --- shared pieces -----------------------------------------------------------------------------


def _check_collection_id(collection_id: str) -> str:
    if not isinstance(collection_id, str) or not re.fullmatch(COLLECTION_ID_RE, collection_id):
        raise InvalidParameterValue(
            f"collection id {collection_id!r} must start with a letter and have at most 64 letters, "
            "digits, '_', '.' or '-'"
        )
    return collection_id


def _check_free(tenant_id: int, collection_id: str) -> None:
    if Layer.objects.filter(tenant_id=tenant_id, collection_id=collection_id).exists():
        raise InvalidParameterValue(f"the tenant already has a layer {collection_id!r}")


def _extent_4326(bounds: tuple[float, float, float, float] | None, srid: int) -> list[float] | None:
    if bounds is None or not all(np.isfinite(bounds)):
        return None
    if srid == 4326:
        return [float(v) for v in bounds]
    try:
        out = transformer(srid, 4326).transform_bounds(*bounds, densify_pts=21)
    except Exception:  # noqa: BLE001 - an extent outside the CRS's area is not worth failing for
        return None
    return [float(v) for v in out] if all(np.isfinite(out)) else None


def _bounds(geoms: np.ndarray) -> tuple[float, float, float, float] | None:
    present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)] if len(geoms) else geoms
    if not len(present):
        return None
    b = shapely.total_bounds(present)
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def _column_names(names: list[str]) -> list[str]:
    """Field names as safe, distinct, lower-case column names (``fid``/``geom`` reserved)."""
    used: set[str] = set(_RESERVED_COLUMNS)
    out = []
    for name in names:
        base = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_") or "field"
        if not re.match(r"[a-z_]", base):
            base = "f_" + base
        base = base[:59]
        column, n = base, 1
        while column in used:
            n += 1
            column = f"{base}_{n}"
        used.add(column)
        out.append(column)
    return out


@dataclass
class _Data:
    """Features read for a layer: geometries (normalised), srid, fields and column values."""

    geometries: np.ndarray
    geometry_type: str
    srid: int
    fields: list[dict[str, str]]  # {"name", "type", "column"}
    values: list[list[Any]]  # one list per field, JSON values

    def __len__(self) -> int:
        return len(self.geometries)

    def extent(self) -> list[float] | None:
        return _extent_4326(_bounds(self.geometries), self.srid)


def _check_feature_count(count: int, what: str) -> None:
    if count > _max_features():
        raise PayloadTooLarge(f"{what} has {count} features; a layer may have at most {_max_features()}")


# --- files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileKind:
    driver: str  # GDAL driver name
    suffix: str  # the extension GDAL is given
    archive: bool = False  # read through /vsizip/


def _file_kind(data: bytes, filename: str) -> _FileKind:
    """What a file is, by its content."""
    if data[:3] == b"fgb" and len(data) > 8:
        return _FileKind("FlatGeobuf", ".fgb")
    media = media_type_sniff(data)
    if media == "application/geopackage+sqlite3":
        return _FileKind("GPKG", ".gpkg")
    if media == "application/geo+json":
        return _FileKind("GeoJSON", ".geojson")
    if media == "application/vnd.google-earth.kml+xml":
        return _FileKind("KML", ".kml")
    if media == "application/vnd.google-earth.kmz":
        return _FileKind("KML", ".kmz", archive=True)
    if media == "text/csv":
        return _FileKind("CSV", ".csv")
    if media == "application/zip":
        try:
            names = [n.lower() for n in zipfile.ZipFile(io.BytesIO(data)).namelist()]
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise UnsupportedMediaType(f"{filename!r} is not a readable zip archive") from exc
        if any(n.endswith(".shp") for n in names):
            return _FileKind("ESRI Shapefile", ".zip", archive=True)
        if any(n.endswith(".gpkg") for n in names):
            return _FileKind("GPKG", ".zip", archive=True)
        raise UnsupportedMediaType(f"{filename!r} is a zip archive without a shapefile (.shp) in it")
    raise UnsupportedMediaType(
        f"{filename!r} is {media} by its content; a layer can be made from a GeoPackage, a zipped "
        "Shapefile, GeoJSON, CSV (with coordinate or WKT columns), KML or FlatGeobuf"
    )


def gdal_path(path: str | Path, driver: str, archive: bool) -> str:
    """The GDAL name of a stored file of that kind (whatever its own file name)."""
    if archive:
        return f"/vsizip/{{{path}}}"
    if driver == "CSV":
        return f"CSV:{path}"
    return str(path)


def _csv_options(path: str) -> dict[str, str]:
    """GDAL CSV open options for the coordinate or WKT columns the header has."""
    import pyogrio

    names = [str(f) for f in pyogrio.read_info(path)["fields"]]
    header = {n.lower(): n for n in names}
    for x, y in (*_CSV_LONLAT, *_CSV_XY):
        if x in header and y in header:
            return {"X_POSSIBLE_NAMES": header[x], "Y_POSSIBLE_NAMES": header[y], "KEEP_GEOM_COLUMNS": "NO",
                    "AUTODETECT_TYPE": "YES", "_LONLAT": "YES" if (x, y) in _CSV_LONLAT else ""}
    for name in _CSV_WKT:
        if name in header:
            return {"GEOM_POSSIBLE_NAMES": header[name], "KEEP_GEOM_COLUMNS": "NO", "AUTODETECT_TYPE": "YES"}
    raise InvalidParameterValue(
        "the CSV file has no coordinate columns (lon/lat, longitude/latitude, x/y, easting/northing) "
        "and no WKT column (wkt, geom, geometry); its columns: " + ", ".join(names)
    )


def _csv_default_srid(options: dict[str, str]) -> int | None:
    """CSV has no CRS: lon/lat columns say WGS 84; others need ``srid``."""
    return 4326 if options.pop("_LONLAT", "") else None


def _srid_from(crs_text: str | None) -> int | None:
    if not crs_text:
        return None
    try:
        crs = CRS.from_user_input(crs_text)
    except CRSError:
        return None
    code = crs.to_epsg(min_confidence=70)
    if code is None and crs.is_geographic and crs.ellipsoid and crs.ellipsoid.name.startswith("WGS 84"):
        return 4326
    return code


@contextmanager
def _staged(data: bytes, kind: _FileKind) -> Iterator[str]:
    """The bytes as a temporary file GDAL can open; yields its GDAL path."""
    with tempfile.TemporaryDirectory(prefix="honua-ingest-") as folder:
        path = Path(folder) / f"data{kind.suffix}"
        path.write_bytes(data)
        yield gdal_path(path, kind.driver, kind.archive)


def _layer_names(path: str) -> list[str]:
    import pyogrio

    return [str(row[0]) for row in pyogrio.list_layers(path)]


def _pick_sublayer(path: str, sublayer: str | None, filename: str) -> str:
    names = _layer_names(path)
    if not names:
        raise InvalidParameterValue(f"{filename!r} has no layers")
    if sublayer:
        if sublayer not in names:
            raise InvalidParameterValue(
                f"{filename!r} has no layer {sublayer!r}; its layers: " + ", ".join(names)
            )
        return sublayer
    if len(names) > 1:
        raise InvalidParameterValue(
            f"{filename!r} has {len(names)} layers; choose one with sublayer: " + ", ".join(names)
        )
    return names[0]


def _field_type(ogr_type: str, subtype: str) -> str:
    if ogr_type in ("OFTInteger", "OFTInteger64"):
        return "boolean" if subtype == "OFSTBoolean" else "integer"
    if ogr_type == "OFTReal":
        return "number"
    if ogr_type == "OFTDateTime":
        return "datetime"
    return "string"


def _read_file(
    path: str, *, sublayer: str, open_options: dict[str, str], srid: int | None, default_srid: int | None,
    filename: str,
) -> _Data:
    import pyogrio
    import pyogrio.raw
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        info = pyogrio.read_info(path, layer=sublayer, **open_options)
        count = int(info.get("features", -1))
        if count >= 0:
            _check_feature_count(count, repr(filename))
        meta, _fids, wkb, data = pyogrio.raw.read(
            path, layer=sublayer, datetime_as_string=True, force_2d=True, **open_options
        )
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidParameterValue(f"{filename!r} cannot be read: {exc}") from exc
    _check_feature_count(len(wkb), repr(filename))
    file_srid = _srid_from(meta.get("crs"))
    if srid is None:
        srid = file_srid or default_srid
    if srid is None:
        what = f"its spatial reference ({meta['crs']!r}) has no EPSG code" if meta.get("crs") else (
            "it does not say its spatial reference"
        )
        raise InvalidParameterValue(f"{filename!r}: {what}; give the EPSG code as srid")
    if srid <= 0:
        raise InvalidParameterValue("srid must be a positive EPSG code")
    try:
        CRS.from_epsg(srid)
    except CRSError as exc:
        raise InvalidParameterValue(f"unknown spatial reference EPSG:{srid}") from exc
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.empty(0, dtype=object)
    geoms, geometry_type = geometries_normalise(np.asarray(geoms, dtype=object))
    names = [str(n) for n in meta["fields"]]
    types = [_field_type(t, s) for t, s in zip(meta["ogr_types"], meta["ogr_subtypes"], strict=True)]
    columns = _column_names(names)
    fields = [{"name": n, "type": t, "column": c} for n, t, c in zip(names, types, columns, strict=True)]
    values = [[json_value(v, t) for v in col] for col, t in zip(data, types, strict=True)]
    return _Data(geoms, geometry_type, srid, fields, values)


# --- hosted tables ----------------------------------------------------------------------------


def _pg_value(value: Any, type_: str) -> Any:
    if value is None or type_ != "datetime":
        return value
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _hosted_create(data: _Data) -> str:
    """A new table in honua_data with the features (COPY, binary), indexed and analysed.
    Runs in the caller's transaction; returns the table name."""
    table = f"l_{uuid.uuid4().hex}"
    ident = sql.Identifier(HOSTED_SCHEMA, table)
    geometry_type = "Geometry" if data.geometry_type == "GeometryCollection" else data.geometry_type
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(f["column"]), sql.SQL(_PG_COLUMN_TYPES[f["type"]])) for f in data.fields
    ]
    create = sql.SQL("CREATE TABLE {} (fid bigint PRIMARY KEY, geom geometry({}, {}){})").format(
        ident,
        sql.SQL(geometry_type),
        sql.Literal(int(data.srid)),
        sql.SQL("").join(sql.SQL(", ") + c for c in columns),
    )
    copy = sql.SQL("COPY {} (fid, geom{}) FROM STDIN (FORMAT BINARY)").format(
        ident, sql.SQL("").join(sql.SQL(", ") + sql.Identifier(f["column"]) for f in data.fields)
    )
    geoms = shapely.set_srid(data.geometries, data.srid) if len(data) else data.geometries
    ewkb = shapely.to_wkb(geoms, include_srid=True) if len(data) else []
    types = ["bigint", "bytea", *(_PG_COLUMN_TYPES[f["type"]] for f in data.fields)]
    converted = [
        [_pg_value(v, f["type"]) for v in col] if f["type"] == "datetime" else col
        for f, col in zip(data.fields, data.values, strict=True)
    ]
    connection.ensure_connection()
    with connection.cursor() as wrapper:
        cur = wrapper.cursor
        cur.execute(create)
        with cur.copy(copy) as out:
            out.set_types(types)
            for i, row in enumerate(zip(ewkb, *converted, strict=True) if converted else ((g,) for g in ewkb)):
                out.write_row((i + 1, *row))
        cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(sql.Identifier(f"{table}_geom_idx"), ident))
        cur.execute(sql.SQL("ANALYZE {}").format(ident))
    return table


def _hosted_drop(schema: str, table: str) -> None:
    with connection.cursor() as wrapper:
        wrapper.cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, table)))


# --- snapshots and info -----------------------------------------------------------------------


def _snapshot(layer: Layer) -> dict[str, Any]:
    return {
        "collection_id": layer.collection_id,
        "title": layer.title,
        "kind": layer.kind,
        "table": f"{layer.schema_name}.{layer.table_name}" if layer.table_name else "",
        "artifact": str(layer.artifact_id) if layer.artifact_id else "",
        "srid": layer.srid,
        "geometry_type": layer.geometry_type,
        "feature_count": layer.feature_count,
        "expires_at": layer.expires_at.isoformat() if layer.expires_at else None,
        "run": str(layer.run_id) if layer.run_id else None,
    }


def layer_label(layer: Layer) -> str:
    """What the data is, for people: "table public.roads", "GeoPackage roads.gpkg"."""
    if layer.kind == Layer.Kind.TABLE:
        return f"table {layer.schema_name}.{layer.table_name}"
    name = _FORMAT_NAMES.get(layer.format, layer.format or "features")
    what = f"{name} {layer.source_name}".strip() if layer.source_name else name
    if layer.kind == Layer.Kind.HOSTED:
        return f"{what} (hosted table {layer.schema_name}.{layer.table_name})" if layer.format else (
            f"hosted table {layer.schema_name}.{layer.table_name}"
        )
    return what + (f", layer {layer.sublayer}" if layer.sublayer else "")


def layer_info(layer: Layer) -> LayerInfo:
    extent = tuple(float(v) for v in layer.extent) if layer.extent else None
    return LayerInfo(
        id=layer.collection_id,
        title=layer.title,
        description=layer.description,
        storage="file" if layer.kind == Layer.Kind.FILE else "postgis",
        source=layer_label(layer),
        srid=layer.srid,
        geometry_type=layer.geometry_type,
        fields=tuple({"name": f["name"], "type": f["type"]} for f in layer.fields or []),
        extent=extent,  # type: ignore[arg-type]
        feature_count=layer.feature_count,
        created=iso_datetime(layer.created_at),
        expires=iso_datetime(layer.expires_at) if layer.expires_at else None,
        run_id=str(layer.run_id) if layer.run_id else None,
    )


def layer_source(layer: Layer) -> LayerSource:
    """The executor-side descriptor of a layer (whole layer: no bbox, no filter)."""
    fields = tuple(dict(f) for f in layer.fields or [])
    common: dict[str, Any] = {
        "layer": layer.collection_id, "label": layer_label(layer), "srid": layer.srid,
        "geometry_type": layer.geometry_type, "fields": fields,
    }
    if layer.kind == Layer.Kind.FILE:
        assert layer.artifact is not None
        archive = bool(layer.open_options.get("_archive")) if layer.open_options else False
        options = {k: str(v) for k, v in (layer.open_options or {}).items() if not k.startswith("_")}
        return LayerSource(
            storage="file", path=gdal_path(artifact_local_path(layer.artifact), layer.format, archive),
            driver=layer.format, sublayer=layer.sublayer, open_options=options, **common,
        )
    return LayerSource(
        storage="postgis", schema=layer.schema_name, table=layer.table_name,
        geometry_column=layer.geometry_column, id_column=layer.id_column, **common,
    )


# --- table layers ----------------------------------------------------------------------------

_PG_TYPES = {
    "smallint": "integer", "integer": "integer", "bigint": "integer",
    "real": "number", "double precision": "number", "numeric": "number",
    "boolean": "boolean",
    "timestamp with time zone": "datetime", "timestamp without time zone": "datetime",
    "text": "string", "character varying": "string", "character": "string",
}


def _split_table(table: str) -> tuple[str, str]:
    schema, dot, name = table.strip().partition(".")
    if not dot or not schema or not name or "." in name:
        raise InvalidParameterValue(f"table {table!r} must be given as schema.table")
    return schema, name


def layer_register_table(
    *,
    tenant_id: int,
    collection_id: str,
    title: str,
    table: str,
    geometry_column: str | None = None,
    id_column: str | None = None,
    description: str = "",
    actor: Any = None,
) -> Layer:
    """A layer of an existing table of this database that the operator allowed."""
    _check_collection_id(collection_id)
    schema, name = _split_table(table)
    if not table_allowed(schema, name):
        raise PermissionDenied(
            f"table {schema}.{name} is not on the operator's allow-list of layer tables (HONUA_LAYER_TABLES)"
        )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT f_geometry_column, srid, type FROM geometry_columns "
            "WHERE f_table_schema = %s AND f_table_name = %s ORDER BY f_geometry_column",
            [schema, name],
        )
        geometry_columns = cur.fetchall()
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, name],
        )
        columns = cur.fetchall()
        cur.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) AND i.indisprimary",
            [schema, name],
        )
        key = [r[0] for r in cur.fetchall()]
    if not columns:
        raise InvalidParameterValue(f"there is no table {schema}.{name}")
    if not geometry_columns:
        raise InvalidParameterValue(f"table {schema}.{name} has no geometry column")
    if geometry_column is None:
        if len(geometry_columns) > 1:
            raise InvalidParameterValue(
                f"table {schema}.{name} has several geometry columns; choose one: "
                + ", ".join(g[0] for g in geometry_columns)
            )
        geometry_column = geometry_columns[0][0]
    found = next((g for g in geometry_columns if g[0] == geometry_column), None)
    if found is None:
        raise InvalidParameterValue(f"table {schema}.{name} has no geometry column {geometry_column!r}")
    srid = int(found[1] or 0)
    if srid <= 0:
        raise InvalidParameterValue(
            f"geometry column {geometry_column!r} of {schema}.{name} has no SRID; constrain it, e.g. geometry(Point, 4326)"
        )
    try:
        CRS.from_epsg(srid)
    except CRSError as exc:
        raise InvalidParameterValue(f"geometry column {geometry_column!r} has an unknown SRID {srid}") from exc
    column_names = [c[0] for c in columns]
    if id_column is None:
        if len(key) != 1:
            raise InvalidParameterValue(
                f"table {schema}.{name} has no single-column primary key; name an id column"
            )
        id_column = key[0]
    elif id_column not in column_names:
        raise InvalidParameterValue(f"table {schema}.{name} has no column {id_column!r}")
    fields = []
    for column, data_type in columns:
        if column in (geometry_column, id_column) or column in {g[0] for g in geometry_columns}:
            continue
        type_ = _PG_TYPES.get(data_type, "string")
        spec = {"name": column, "type": type_, "column": column}
        if type_ == "string" and data_type not in ("text", "character varying", "character"):
            spec["cast"] = "text"
        fields.append(spec)
    kind = str(found[2] or "GEOMETRY").upper()
    geometry_type = next((n for n in TYPE_NAMES.values() if n.upper() == kind), "Geometry")
    ident = sql.Identifier(schema, name)
    geom = sql.Identifier(geometry_column)
    with connection.cursor() as wrapper:
        wrapper.cursor.execute(
            sql.SQL("SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                    "FROM (SELECT count(*) AS n, ST_Extent({}) AS e FROM {}) AS s").format(geom, ident)
        )
        row = wrapper.cursor.fetchone()
    count = int(row[0]) if row else 0
    bounds = (row[1], row[2], row[3], row[4]) if row and row[1] is not None else None
    with transaction.atomic():
        tenant_id = int(tenant_id)
        _check_free(tenant_id, collection_id)
        layer = Layer.objects.create(
            tenant_id=tenant_id, collection_id=collection_id, title=title or collection_id,
            description=description or "", kind=Layer.Kind.TABLE, schema_name=schema, table_name=name,
            geometry_column=geometry_column, id_column=id_column, srid=srid, geometry_type=geometry_type,
            fields=fields, feature_count=count, extent=_extent_4326(bounds, srid),
            created_by_id=_user_id(actor),
        )
        _audit("layer.register", layer, actor)
    return layer


def _user_id(actor: Any) -> int | None:
    if isinstance(actor, Principal):
        return actor.user_id
    pk = getattr(actor, "pk", None)
    return int(pk) if isinstance(pk, int) else None


def _actor_name(actor: Any) -> str:
    if actor is None:
        return ""
    if isinstance(actor, Principal):
        return actor.username
    if hasattr(actor, "get_username"):
        return str(actor.get_username())
    return str(actor)


def _audit(action: str, layer: Layer, actor: Any, *, deleted: bool = False) -> None:
    snapshot = _snapshot(layer)
    audit_record(
        action=action, object_type="layer", object_id=str(layer.pk), actor=_actor_name(actor),
        tenant_id=layer.tenant_id, before=snapshot if deleted else None, after=None if deleted else snapshot,
    )


# --- ingest ----------------------------------------------------------------------------------


def layer_ingest(
    *,
    tenant_id: int,
    collection_id: str,
    title: str,
    data: bytes,
    filename: str,
    storage: str = "hosted",
    srid: int | None = None,
    sublayer: str | None = None,
    description: str = "",
    actor: Any = None,
    expires_at: datetime | None = None,
) -> Layer:
    """A layer from a file (GeoPackage, zipped Shapefile, GeoJSON, CSV, KML, FlatGeobuf):
    copied into a hosted table, or kept as the file and read through GDAL at each use."""
    _check_collection_id(collection_id)
    if storage not in ("hosted", "file"):
        raise InvalidParameterValue("storage must be 'hosted' or 'file'")
    if len(data) > _max_bytes():
        raise PayloadTooLarge(f"{filename!r} is {len(data)} bytes; a layer file may have at most {_max_bytes()}")
    if not data:
        raise InvalidParameterValue(f"{filename!r} is empty")
    if srid is not None and (isinstance(srid, bool) or not isinstance(srid, int) or srid <= 0):
        raise InvalidParameterValue("srid must be a positive EPSG code")
    tenant_id = int(tenant_id)
    _check_free(tenant_id, collection_id)
    kind = _file_kind(data, filename)
    with _staged(data, kind) as path:
        chosen = _pick_sublayer(path, sublayer, filename)
        multi_layer = len(_layer_names(path)) > 1
        options: dict[str, str] = {}
        default_srid = None
        if kind.driver == "CSV":
            options = _csv_options(path)
            default_srid = _csv_default_srid(options)
        features = _read_file(
            path, sublayer=chosen, open_options=options, srid=srid, default_srid=default_srid, filename=filename
        )
    # Layer names of single-layer GeoJSON, CSV, FlatGeobuf (and KML) files come from the file
    # name, which the stored copy does not keep: those are read as "the first layer".
    names_needed = multi_layer or kind.archive or kind.driver == "GPKG"
    base = {
        "tenant_id": tenant_id, "collection_id": collection_id, "title": title or collection_id,
        "description": description or "", "format": kind.driver, "srid": features.srid,
        "geometry_type": features.geometry_type, "fields": features.fields, "feature_count": len(features),
        "extent": features.extent(), "source_name": filename[:255], "created_by_id": _user_id(actor),
        "expires_at": expires_at,
    }
    if storage == "hosted":
        with transaction.atomic():
            table = _hosted_create(features)
            layer = Layer.objects.create(
                kind=Layer.Kind.HOSTED, schema_name=HOSTED_SCHEMA, table_name=table, geometry_column="geom",
                id_column="fid", sublayer=chosen if names_needed else "", **base,
            )
            _audit("layer.ingest", layer, actor)
        return layer
    stored_options: dict[str, Any] = dict(options)
    if kind.archive:
        stored_options["_archive"] = True
    for f in features.fields:
        f["column"] = f["name"]  # a file layer reads GDAL's own field names
    artifact: Artifact | None = None
    try:
        with transaction.atomic():
            artifact = artifact_create(
                tenant_id=tenant_id, run_id=None, name=filename[:200], data=data, media_type=media_type_sniff(data)
            )
            Artifact.objects.filter(pk=artifact.pk).update(expires_at=None)
            layer = Layer.objects.create(
                kind=Layer.Kind.FILE, artifact=artifact, sublayer=chosen if names_needed else "", open_options=stored_options, **base
            )
            _audit("layer.ingest", layer, actor)
    except Exception:
        if artifact is not None:
            artifact_store_delete(store=artifact.store, key=artifact.key)
        raise
    return layer


def _writer_check(principal: Principal) -> None:
    if not set(principal.roles) & set(WRITER_ROLES):
        raise PermissionDenied("only editors and administrators of the tenant may create layers")


def layer_ingest_upload(
    *,
    principal: Principal,
    item_id: str,
    collection_id: str,
    title: str,
    description: str = "",
    storage: str = "hosted",
    srid: int | None = None,
    sublayer: str | None = None,
) -> LayerInfo:
    """Ingest an uploaded item of the principal's tenant as a layer (editors, admins)."""
    from controlplane.services.uploads import upload_bytes, upload_get

    _writer_check(principal)
    item = upload_get(principal=principal, item_id=item_id)
    data = upload_bytes(principal=principal, item_id=item_id)
    layer = layer_ingest(
        tenant_id=item.tenant_id, collection_id=collection_id, title=title, data=data, filename=item.item_name,
        storage=storage, srid=srid, sublayer=sublayer, description=description, actor=principal,
    )
    return layer_info(layer)


# --- publish ---------------------------------------------------------------------------------


def _infer_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return "string"
    if kinds <= {bool}:
        return "boolean"
    if kinds <= {int}:
        return "integer"
    if kinds <= {int, float}:
        return "number"
    return "string"


def _features_data(features: dict[str, Any]) -> _Data:
    try:
        parsed = read_features(features, name="features")
    except InvalidInput as exc:
        raise InvalidParameterValue(str(exc)) from exc
    _check_feature_count(len(parsed), "the output")
    geoms = np.asarray(shapely.force_2d(parsed.geometries), dtype=object) if len(parsed) else parsed.geometries
    geoms, geometry_type = geometries_normalise(geoms)
    declared = {f["name"]: f.get("type", "string") for f in parsed.fields or features.get("fields") or []}
    names: list[str] = list(declared)
    for props in parsed.properties:
        for key in props or {}:
            if key not in declared and key not in names:
                names.append(key)
    raw = [[(p or {}).get(n) for p in parsed.properties] for n in names]
    types = []
    for name, col in zip(names, raw, strict=True):
        t = declared.get(name)
        types.append(t if t in _PG_COLUMN_TYPES else _infer_type(col))
    values = []
    for col, t in zip(raw, types, strict=True):
        if t == "string":
            values.append([None if v is None else (v if isinstance(v, str) else str(v)) for v in col])
        else:
            try:
                values.append([json_value(v, t) for v in col])
            except (TypeError, ValueError) as exc:
                raise InvalidParameterValue(f"a {t} field has a value of another type: {exc}") from exc
    columns = _column_names(names)
    fields = [{"name": n, "type": t, "column": c} for n, t, c in zip(names, types, columns, strict=True)]
    return _Data(geoms, geometry_type, parsed.srid, fields, values)


def layer_publish(
    *,
    tenant_id: int,
    collection_id: str,
    title: str,
    features: dict[str, Any],
    run_id: uuid.UUID | str | None = None,
    ttl_seconds: int | None = None,
    actor: Any = None,
) -> Layer:
    """A hosted layer from a feature collection (a run's output published with register_as)."""
    _check_collection_id(collection_id)
    if ttl_seconds is not None and (isinstance(ttl_seconds, bool) or int(ttl_seconds) <= 0):
        raise InvalidParameterValue("ttl_seconds must be a positive number of seconds")
    tenant_id = int(tenant_id)
    _check_free(tenant_id, collection_id)
    data = _features_data(features)
    expires = timezone.now() + timedelta(seconds=int(ttl_seconds)) if ttl_seconds else None
    with transaction.atomic():
        table = _hosted_create(data)
        layer = Layer.objects.create(
            tenant_id=tenant_id, collection_id=collection_id, title=title or collection_id, kind=Layer.Kind.HOSTED,
            schema_name=HOSTED_SCHEMA, table_name=table, geometry_column="geom", id_column="fid", srid=data.srid,
            geometry_type=data.geometry_type, fields=data.fields, feature_count=len(data), extent=data.extent(),
            created_by_id=_user_id(actor), expires_at=expires, run_id=run_id,
        )
        _audit("layer.publish", layer, actor)
    return layer


# --- delete and expiry -----------------------------------------------------------------------


def _remove(layer: Layer, actor: Any, action: str) -> None:
    """Delete the row (and its hosted table or file) in the caller's transaction."""
    _audit(action, layer, actor, deleted=True)
    artifact = layer.artifact
    kind, schema, table = layer.kind, layer.schema_name, layer.table_name
    layer.delete()
    if kind == Layer.Kind.HOSTED:
        _hosted_drop(schema, table)
    if artifact is not None and not artifact.layers.exists():
        store, key = artifact.store, artifact.key
        artifact.delete()
        transaction.on_commit(lambda: artifact_store_delete(store=store, key=key))


def layer_delete(*, tenant_id: int, collection_id: str, actor: Any = None) -> None:
    """Remove a layer of the tenant; a hosted layer's table is dropped with it."""
    with transaction.atomic():
        layer = (
            Layer.objects.select_for_update(of=("self",))
            .select_related("artifact")
            .filter(tenant_id=int(tenant_id), collection_id=collection_id)
            .first()
        )
        if layer is None:
            raise NoSuchLayer(f"no layer {collection_id!r}")
        _remove(layer, actor, "layer.delete")


def layers_expire(*, limit: int = 100) -> int:
    """Periodic: remove layers past their expiry (and their tables or files)."""
    done = 0
    with transaction.atomic():
        layers = list(
            Layer.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("artifact")
            .filter(expires_at__lte=timezone.now())
            .order_by("expires_at")[:limit]
        )
        for layer in layers:
            _remove(layer, "expiry", "layer.expire")
            done += 1
    return done


def layer_writer_check(*, principal: Principal) -> None:
    """PermissionDenied unless the principal may create layers (editor, admin)."""
    _writer_check(principal)

