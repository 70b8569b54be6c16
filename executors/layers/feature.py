"""One feature of a layer by its id (OGC API - Features ``/items/{featureId}``).

Ids are what ``source_read`` gives: a table's key, a hosted layer's ``fid``, a file's
positions 1..n. Kept beside ``source.py`` (and built on its helpers) so one read stays one
indexed query on a table and one skip in GDAL on a file.
"""

from __future__ import annotations

import re

import numpy as np
import shapely
from psycopg import sql

from executors.base import InvalidInput
from executors.geodata import Features
from executors.layers.source import (
    LayerSource,
    _cursor,
    _read_file_all,
    _select_column,
    _table,
    json_value,
)

_INTEGER = re.compile(r"-?[0-9]{1,18}")


def source_feature(source: LayerSource, feature_id: str) -> Features:
    """The feature whose id is ``feature_id`` (no bbox or filter applies): one or none."""
    if source.storage == "file":
        if not _INTEGER.fullmatch(feature_id) or int(feature_id) < 1:
            return _empty(source)
        return _read_file_all(source.replace(bbox=None, filter=None), skip=int(feature_id) - 1, max_features=1)
    if source.storage != "postgis":
        raise InvalidInput(f"layer {source.layer!r} has an unknown storage {source.storage!r}")
    ident = sql.Identifier(source.id_column)
    # An integer literal compares with the key as it is (indexed, whatever the key's type);
    # anything else is compared as text, which cannot fail on an integer key.
    match = sql.SQL("{} = %s").format(ident) if _INTEGER.fullmatch(feature_id) else sql.SQL("{}::text = %s").format(ident)
    query = sql.SQL("SELECT {id}, ST_AsBinary({geom}){cols} FROM {table} WHERE {match} LIMIT 1").format(
        id=ident,
        geom=sql.Identifier(source.geometry_column),
        cols=sql.SQL("").join(sql.SQL(", ") + _select_column(f) for f in source.fields),
        table=_table(source),
        match=match,
    )
    with _cursor() as cur:
        cur.execute(query, [feature_id], binary=True)
        rows = cur.fetchall()
    if not rows:
        return _empty(source)
    row = rows[0]
    types = [f.get("type", "string") for f in source.fields]
    props = {n: json_value(v, t) for n, v, t in zip(source.field_names(), row[2:], types, strict=True)}
    return Features(
        geometries=np.asarray([shapely.from_wkb(row[1]) if row[1] is not None else None], dtype=object),
        properties=[props],
        ids=[row[0] if isinstance(row[0], int) else str(row[0])],
        srid=source.srid,
        fields=[{"name": f["name"], "type": f.get("type", "string")} for f in source.fields],
    )


def _empty(source: LayerSource) -> Features:
    return Features(
        geometries=np.empty(0, dtype=object), properties=[], ids=[], srid=source.srid,
        fields=[{"name": f["name"], "type": f.get("type", "string")} for f in source.fields],
    )
