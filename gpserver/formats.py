"""Result and input parameters as GeoJSON (``f=geojson``) and KMZ (``f=kmz``).

Both serve feature outputs only (GPFeatureRecordSetLayer: a feature collection or one
geometry); any other parameter answers Esri's error envelope, as ArcGIS Server does.

GeoJSON follows RFC 7946: WGS 84 longitude/latitude unless the request's ``outSR`` names
another system, in which case the coordinates are in that system and a (2008-style) ``crs``
member names it, as ArcGIS Server's GeoJSON does; polygons follow the right-hand rule
(exteriors counter-clockwise); positions carry z only with ``returnZ`` and never m. KMZ is
written by GDAL's LIBKML driver (bundled with pyogrio) and is always WGS 84, as KML is.
"""

from __future__ import annotations

import io
import math
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely

from controlplane.contracts import ParamSpec, ParamType
from gpserver import geometry as geo
from gpserver.negotiation import FormatNotSupported
from gpserver.translate import DEFAULT_SRID, OID_FIELD, RenderOptions, data_type, reprojected

KMZ_MEDIA_TYPE = "application/vnd.google-earth.kmz"
GEOJSON_MEDIA_TYPE = "application/geo+json"


def _features(p: ParamSpec, value: Any, fmt: str, opts: RenderOptions, srid: int) -> tuple[list[dict[str, Any]], bool]:
    """The features of a feature output in ``srid`` (capped at maximumRecords), and whether
    the cap cut some off."""
    if p.type not in (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY) or p.multi:
        raise FormatNotSupported(
            f"f={fmt}: format not supported for this result ({data_type(p)}); f={fmt} serves "
            "feature sets (GPFeatureRecordSetLayer). Use f=json",
        )
    if not isinstance(value, dict):
        return [], False
    value = reprojected(p, value, srid)
    if value.get("type") != "FeatureCollection":
        geom = {k: v for k, v in value.items() if k != "srid"}
        return [{"type": "Feature", "geometry": geom, "properties": {}}], False
    features = [f for f in value.get("features") or [] if isinstance(f, dict)]
    if opts.max_records is not None and len(features) > opts.max_records:
        return features[: opts.max_records], True
    return features, False


def _position(p: list[float], z: bool) -> list[float]:
    return [p[0], p[1], p[2]] if z and len(p) > 2 else [p[0], p[1]]


def _rfc7946(geom: dict[str, Any] | None, z: bool) -> dict[str, Any] | None:
    """A geometry with exteriors counter-clockwise and holes clockwise, without m (and
    without z unless asked)."""
    if not geom:
        return None
    gtype = geom.get("type")
    coords: Any = geom.get("coordinates") or []
    if gtype == "GeometryCollection":
        return {"type": gtype, "geometries": [_rfc7946(g, z) for g in geom.get("geometries") or []]}
    if gtype == "Point":
        return {"type": gtype, "coordinates": _position(coords, z)}
    if gtype in ("MultiPoint", "LineString"):
        return {"type": gtype, "coordinates": [_position(c, z) for c in coords]}
    if gtype == "MultiLineString":
        return {"type": gtype, "coordinates": [[_position(c, z) for c in line] for line in coords]}

    def polygon(rings: list[Any]) -> list[Any]:
        return [geo.oriented([_position(c, z) for c in ring], clockwise=i > 0) for i, ring in enumerate(rings)]

    if gtype == "Polygon":
        return {"type": gtype, "coordinates": polygon(coords)}
    if gtype == "MultiPolygon":
        return {"type": gtype, "coordinates": [polygon(rings) for rings in coords]}
    return geom


def geojson_document(p: ParamSpec, value: Any, opts: RenderOptions) -> dict[str, Any]:
    """A feature output as an RFC 7946 FeatureCollection (ids as the OBJECTIDs of f=json)."""
    srid = opts.out_srid or DEFAULT_SRID
    features, exceeded = _features(p, value, "geojson", opts, srid)
    doc: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": i + 1,
                "geometry": _rfc7946(f.get("geometry"), opts.return_z),
                "properties": {k: v for k, v in (f.get("properties") or {}).items() if k.upper() != OID_FIELD},
            }
            for i, f in enumerate(features)
        ],
    }
    if srid != DEFAULT_SRID:
        doc["crs"] = {"type": "name", "properties": {"name": f"EPSG:{srid}"}}
    if exceeded:
        doc["properties"] = {"exceededTransferLimit": True}
    return doc


def _column(values: list[Any]) -> np.ndarray:
    """One attribute as an array GDAL writes with a fitting KML type (text for mixed values)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=np.int32)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    if present and numbers:
        if all(isinstance(v, int) for v in present) and len(present) == len(values) and all(
            -(2**31) <= v < 2**31 for v in present
        ):
            return np.array(values, dtype=np.int32)
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array([None if v is None else v if isinstance(v, str) else str(v) for v in values], dtype=object)


def kmz_bytes(p: ParamSpec, value: Any, opts: RenderOptions, *, name: str) -> bytes:
    """A feature output as a KMZ (a zip holding doc.kml), in WGS 84."""
    import pyogrio.raw

    features, _ = _features(p, value, "kmz", opts, DEFAULT_SRID)
    geoms = [
        shapely.from_geojson(orjson.dumps(_rfc7946(f["geometry"], True)).decode()) if f.get("geometry") else None
        for f in features
    ]
    names: list[str] = []
    for f in features:
        for key in f.get("properties") or {}:
            if key not in names and key.upper() != OID_FIELD:
                names.append(key)
    rows = [f.get("properties") or {} for f in features]
    columns = [np.array(range(1, len(features) + 1), dtype=np.int32)] + [
        _column([row.get(n) for row in rows]) for n in names
    ]
    wkb = np.array([None if g is None else shapely.to_wkb(g, include_srid=False) for g in geoms], dtype=object)
    with tempfile.TemporaryDirectory(prefix="honua-kmz-") as folder:
        kml = Path(folder) / "doc.kml"
        pyogrio.raw.write(
            str(kml), wkb, columns, [OID_FIELD, *names], crs="EPSG:4326", driver="LIBKML",
            geometry_type="Unknown", layer=name,
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("doc.kml", kml.read_bytes())
    return buffer.getvalue()
