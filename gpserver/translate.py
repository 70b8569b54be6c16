"""GeoservicesREST GPServer wire format <-> the internal contract.

Pure functions: form fields of ``execute``/``submitJob`` -> ``ExecutionRequest``; a
``GPServiceSpec`` / ``ProcessSpec`` -> service and task resources; an ``ExecutionResult``
-> GP result, job and parameter documents; errors -> the Esri error envelope. Views parse,
call the control plane and hand the result to these functions; nothing here touches the
database or HTTP objects. Geometry and spatial references are in ``gpserver.geometry``.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from controlplane import exceptions as errors
from controlplane.contracts import (
    ExecutionMode,
    ExecutionRequest,
    ExecutionResult,
    GPServiceSpec,
    LayerInfo,
    MessageType,
    OutputRequest,
    ParamSpec,
    ParamType,
    Principal,
    ProcessSpec,
    RunStatus,
    Surface,
)
from controlplane.services import esrijson
from controlplane.services.esrijson import epoch_ms_to_iso
from controlplane.services.jsonbounds import json_bounds_check
from controlplane.services.layerrefs import collection_in_url
from controlplane.services.outbound import outbound_url_precheck
from controlplane.services.references import ESRI_FEATURE_SERVICE
from gpserver import geometry as geo
from honua.tracecontext import traceparent_normalize

CURRENT_VERSION = 11.3
FULL_VERSION = "11.3.0"
DEFAULT_SRID = 4326

# --- vocabulary -----------------------------------------------------------------------------

# Internal run status -> esriJobStatus (DESIGN §4).
STATUS = {
    RunStatus.QUEUED: "esriJobSubmitted",
    RunStatus.WAITING: "esriJobWaiting",
    RunStatus.RUNNING: "esriJobExecuting",
    RunStatus.CANCELLING: "esriJobCancelling",
    RunStatus.SUCCEEDED: "esriJobSucceeded",
    RunStatus.FAILED: "esriJobFailed",
    RunStatus.TIMED_OUT: "esriJobTimedOut",
    RunStatus.CANCELLED: "esriJobCancelled",
}
JOB_DELETED = "esriJobDeleted"

MESSAGE_TYPES = {
    MessageType.INFO: "esriJobMessageTypeInformative",
    MessageType.WARNING: "esriJobMessageTypeWarning",
    MessageType.ERROR: "esriJobMessageTypeError",
}

DIRECTION_IN = "esriGPParameterDirectionInput"
DIRECTION_OUT = "esriGPParameterDirectionOutput"
REQUIRED = "esriGPParameterTypeRequired"
OPTIONAL = "esriGPParameterTypeOptional"
DERIVED = "esriGPParameterTypeDerived"

FEATURE_SET = "GPFeatureRecordSetLayer"
DATA_TYPES = {
    ParamType.STRING: "GPString",
    ParamType.INTEGER: "GPLong",
    ParamType.NUMBER: "GPDouble",
    ParamType.BOOLEAN: "GPBoolean",
    ParamType.DATETIME: "GPDate",
    ParamType.LINEAR_UNIT: "GPLinearUnit",
    ParamType.GEOMETRY: FEATURE_SET,
    ParamType.FEATURE_COLLECTION: FEATURE_SET,
    ParamType.BBOX: "GPExtent",
    ParamType.SPATIAL_REFERENCE: "GPSpatialReference",
    ParamType.FILE: "GPDataFile",
    ParamType.RASTER: "GPRasterDataLayer",
    ParamType.OBJECT: "GPString",  # any JSON value, as JSON text
}

# esriUnits (linear) <-> internal unit names. Lookups are case-insensitive: arcgis-python
# title-cases units that start with "esri" ("Esrimeters") and writes others as
# "esri" + title ("esriNauticalmiles").
ESRI_UNITS = {
    "esriMeters": "meter",
    "esriKilometers": "kilometer",
    "esriCentimeters": "centimeter",
    "esriMillimeters": "millimeter",
    "esriDecimeters": "decimeter",
    "esriFeet": "foot",
    "esriInches": "inch",
    "esriYards": "yard",
    "esriMiles": "mile",
    "esriNauticalMiles": "nautical_mile",
    "esriPoints": "point",
    "esriDecimalDegrees": "degree",
}
_UNIT_OUT = {internal: esri for esri, internal in ESRI_UNITS.items()}
_UNIT_OUT["us_survey_foot"] = "esriFeet"
_UNIT_IN = {esri.lower(): internal for esri, internal in ESRI_UNITS.items()}
_UNIT_IN.update(
    {
        "esriintfeet": "foot", "esriintinches": "inch", "esriintyards": "yard", "esriintmiles": "mile",
        "esriintnauticalmiles": "nautical_mile", "esrisurveyfeet": "us_survey_foot",
        "meters": "meter", "metres": "meter", "m": "meter", "kilometers": "kilometer",
        "kilometres": "kilometer", "km": "kilometer", "centimeters": "centimeter", "cm": "centimeter",
        "millimeters": "millimeter", "mm": "millimeter", "decimeters": "decimeter", "feet": "foot",
        "ft": "foot", "inches": "inch", "yards": "yard", "miles": "mile", "mi": "mile",
        "nauticalmiles": "nautical_mile", "nautical_miles": "nautical_mile", "points": "point",
        "decimaldegrees": "degree", "degrees": "degree",
    }
)

OID_FIELD = "OBJECTID"
_INT32 = 2**31 - 1


# --- job ids ---------------------------------------------------------------------------------


def job_id(run_id: uuid.UUID) -> str:
    """Esri-style job id of a run: "j" and the 32 hex digits of its UUID."""
    return "j" + run_id.hex


def run_id_of(job: str) -> uuid.UUID:
    """The run UUID of a job id ("j" + 32 hex; the bare UUID of the OGC surface works too)."""
    text = job.strip()
    if re.fullmatch(r"[jJ][0-9a-fA-F]{32}", text):
        text = text[1:]
    try:
        return uuid.UUID(text)
    except ValueError:
        raise errors.NoSuchJob(f"no job {job!r}") from None


# --- scalar parsing ---------------------------------------------------------------------------


def parse_bool(text: Any, where: str = "value") -> bool | None:
    """A GP boolean in any letter case (None when not supplied)."""
    if isinstance(text, bool):
        return text
    if text is None:
        return None
    value = str(text).strip().lower()
    if value == "":
        return None
    if value in ("true", "1", "yes", "t", "y"):
        return True
    if value in ("false", "0", "no", "f", "n"):
        return False
    raise errors.InvalidParameterValue(f"{where}: {text!r} is not a boolean (true or false)")


def _json_text(text: str, where: str) -> Any:
    json_bounds_check(text, where=where)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise errors.InvalidParameterValue(f"{where}: not valid JSON: {text[:80]!r}") from None


def _structured(value: Any, where: str) -> Any:
    """A structured value given as JSON text in a form field, or already decoded."""
    if isinstance(value, str):
        text = value.strip()
        return None if text in ("", "null") else _json_text(text, where)
    return value


def iso_to_epoch_ms(text: str) -> int | None:
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(round(value.timestamp() * 1000))


def unit_in(units: Any, where: str) -> str:
    """An internal linear unit from an esriUnits name (any letter case) or a plain name."""
    key = str(units or "").strip().lower().replace(" ", "")
    if key in _UNIT_IN:
        return _UNIT_IN[key]
    internal = str(units or "").strip().lower().replace(" ", "_")
    if internal in _UNIT_OUT:
        return internal
    raise errors.InvalidParameterValue(
        f"{where}: unknown unit {units!r}; use one of " + ", ".join(ESRI_UNITS)
    )


def unit_out(unit: str) -> str:
    return _UNIT_OUT.get(unit, "esriUnknownUnits")


# --- input values ----------------------------------------------------------------------------


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not an integer") from None
    if not number.is_integer():
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not an integer")
    return int(number)


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool):
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not a number")
    if isinstance(value, int | float):
        return value
    try:
        return float(str(value).strip())
    except ValueError:
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not a number") from None


def _datetime(value: Any, where: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch_ms_to_iso(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return epoch_ms_to_iso(float(text))
    if iso_to_epoch_ms(text) is None:
        raise errors.InvalidParameterValue(f"{where}: {value!r} is not a date (epoch milliseconds)")
    return text


def _linear_unit(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            value = _json_text(text, where)
        else:
            # "5 miles" / "100 esriMeters" (what LinearUnit.from_str accepts).
            match = re.fullmatch(r"(-?[\d.eE+-]+)\s*(.*)", text)
            if match is None:
                raise errors.InvalidParameterValue(f"{where}: {value!r} is not a linear unit")
            return {"value": _number(match.group(1), where), "unit": unit_in(match.group(2) or "meter", where)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"value": value, "unit": "meter"}
    if not isinstance(value, dict):
        raise errors.InvalidParameterValue(f"{where}: a linear unit is {{\"distance\", \"units\"}}")
    distance = value.get("distance", value.get("value"))
    if distance is None:
        raise errors.InvalidParameterValue(f"{where}: a linear unit needs a distance")
    return {"value": _number(distance, where), "unit": unit_in(value.get("units", value.get("unit")), where)}


def _is_geojson(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("type"), str) and ("features" in doc or "coordinates" in doc
                                                 or "geometry" in doc or "geometries" in doc)


def _geojson_srid(doc: dict[str, Any], where: str) -> int:
    crs = doc.get("crs")
    name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None
    if not name:
        return int(doc.get("srid") or DEFAULT_SRID)
    match = re.search(r"(?:EPSG(?:::|:|/0/|/[^/]*/))(\d+)$", str(name), re.IGNORECASE)
    if match is None:
        if str(name).upper().endswith("CRS84"):
            return DEFAULT_SRID
        raise errors.InvalidParameterValue(f"{where}: unsupported crs {name!r}")
    return int(match.group(1))


def featureset_in(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """An Esri FeatureSet (or a GeoJSON FeatureCollection, or one Esri geometry) -> the
    internal feature_collection. The object-id attribute becomes the feature id."""
    if isinstance(doc.get("layers"), list) and doc["layers"]:
        doc = doc["layers"][0]  # feature collection JSON: its first layer
    if isinstance(doc.get("featureSet"), dict):
        doc = doc["featureSet"]  # a layer: its features
    if _is_geojson(doc):
        srid = _geojson_srid(doc, where)
        body = {k: v for k, v in doc.items() if k not in ("crs", "srid")}
        if body.get("type") == "FeatureCollection":
            return {**body, "srid": srid}
        if body.get("type") == "Feature":
            return {"type": "FeatureCollection", "srid": srid, "features": [body]}
        return {"type": "FeatureCollection", "srid": srid,
                "features": [{"type": "Feature", "geometry": body, "properties": {}}]}
    if "features" not in doc and geo.esri_kind(doc) is not None:
        srid = geo.srid_from_sr(doc.get("spatialReference"), where) or DEFAULT_SRID
        geom = geo.esri_to_geojson(doc, where=where)
        return {"type": "FeatureCollection", "srid": srid,
                "features": [{"type": "Feature", "geometry": geom, "properties": {}}]}
    return esrijson.featureset_to_internal(doc, where)


def _geometry_in(doc: dict[str, Any], where: str) -> dict[str, Any] | None:
    fc = featureset_in(doc, where)
    geoms = [f.get("geometry") for f in fc["features"] if f.get("geometry")]
    if not geoms:
        return None
    if len(geoms) > 1:
        raise errors.InvalidParameterValue(f"{where} takes one geometry; got {len(geoms)} features")
    return {**geoms[0], "srid": fc["srid"]}


def _reference(p: ParamSpec, doc: dict[str, Any]) -> dict[str, Any] | None:
    """``{"itemID"}`` (an upload) or ``{"url"}`` -> the internal reference forms. A feature
    input's URL names a feature service layer, read with its ``filter`` (a where clause) by
    the control plane (``controlplane.services.references``)."""
    item = doc.get("itemID") or doc.get("itemId")
    if item:
        return {"upload": str(item)}
    url = doc.get("url")
    if isinstance(url, str) and url.strip() and p.type in (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY):
        if not re.match(r"^https?://", url.strip(), re.I):
            raise errors.InvalidParameterValue(f"parameter {p.name!r}: url must be an http(s) URL of a layer")
        ref: dict[str, Any] = {"href": url.strip(), "kind": ESRI_FEATURE_SERVICE}
        where = doc.get("filter")
        if where not in (None, ""):
            if not isinstance(where, str):
                raise errors.InvalidParameterValue(f"parameter {p.name!r}: filter must be a where clause (text)")
            ref["filter"] = where
        if doc.get("time") not in (None, ""):
            ref["time"] = doc["time"] if isinstance(doc["time"], str | int) else _text(doc["time"])
        return ref
    if isinstance(url, str) and url:
        outbound_url_precheck(url, where=f"parameter {p.name!r}")
        out: dict[str, Any] = {"href": url}
        if p.media_types:
            out["media_type"] = p.media_types[0]
        return out
    return None


def _extent(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str) and not value.strip().startswith("{"):
        parts = [v for v in re.split(r"[,\s]+", value.strip()) if v]
        if len(parts) == 4:
            return {"bbox": [_number(v, where) for v in parts], "srid": DEFAULT_SRID}
    doc = _structured(value, where)
    if not isinstance(doc, dict) or "xmin" not in doc:
        raise errors.InvalidParameterValue(f"{where}: an extent is {{xmin, ymin, xmax, ymax, spatialReference}}")
    box = [_number(doc.get(k), where) for k in ("xmin", "ymin", "xmax", "ymax")]
    if doc.get("zmin") is not None and doc.get("zmax") is not None:
        box = [box[0], box[1], _number(doc["zmin"], where), box[2], box[3], _number(doc["zmax"], where)]
    return {"bbox": box, "srid": geo.srid_from_sr(doc.get("spatialReference"), where) or DEFAULT_SRID}


def _spatial_reference(value: Any, where: str) -> dict[str, Any] | None:
    if isinstance(value, str):
        text = value.strip()
        if re.match(r"^(PROJCS|GEOGCS|PROJCRS|GEOGCRS|GEODCRS|COMPD_CS|COMPOUNDCRS)\b", text, re.I):
            return {"srid": geo.srid_from_wkt(text, where)}
        if text.startswith("{"):
            value = _json_text(text, where)
    srid = geo.srid_from_sr(value, where)
    return None if srid is None else {"srid": srid}


def _file(p: ParamSpec, value: Any, where: str) -> dict[str, Any] | None:
    if isinstance(value, str) and re.match(r"^https?://", value.strip(), re.I):
        return _reference(p, {"url": value.strip()})
    doc = _structured(value, where)
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise errors.InvalidParameterValue(f"{where}: a data file is {{\"url\"}} or {{\"itemID\"}}")
    if not any(doc.get(k) for k in ("url", "itemID", "itemId")) and set(doc) <= {"url", "itemID", "itemId"}:
        # The Python client sends an unset GPDataFile as DataFile.from_str("") -> {"url": ""}:
        # "not supplied", like the empty string.
        return None
    ref = _reference(p, doc)
    if ref is None:
        raise errors.InvalidParameterValue(f"{where}: a data file is {{\"url\"}} or {{\"itemID\"}}")
    return ref


def _object(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    json_bounds_check(value, where="an object value")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value  # a GPString that is not JSON: the text itself


def input_item(p: ParamSpec, value: Any) -> Any:
    """One GP value (form text, or an item of a decoded multivalue array) of input ``p`` ->
    its internal value; None when not supplied."""
    where = f"parameter {p.name!r}"
    t = p.type
    if value is None or (isinstance(value, str) and value == ""):
        return None
    if t is ParamType.STRING:
        return value if isinstance(value, str) else _text(value)
    if t is ParamType.INTEGER:
        return _integer(value, where)
    if t is ParamType.NUMBER:
        return _number(value, where)
    if t is ParamType.BOOLEAN:
        return parse_bool(value, where)
    if t is ParamType.DATETIME:
        return _datetime(value, where)
    if t is ParamType.LINEAR_UNIT:
        return _linear_unit(value, where)
    if t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION):
        doc = _structured(value, where)
        if doc is None:
            return None
        if not isinstance(doc, dict):
            raise errors.InvalidParameterValue(f"{where}: a feature set must be a JSON object")
        ref = _reference(p, doc) if ("url" in doc or "itemID" in doc) and "features" not in doc else None
        if ref is not None:
            return ref
        return _geometry_in(doc, where) if t is ParamType.GEOMETRY else featureset_in(doc, where)
    if t is ParamType.BBOX:
        return _extent(value, where)
    if t is ParamType.SPATIAL_REFERENCE:
        return _spatial_reference(value, where)
    if t in (ParamType.FILE, ParamType.RASTER):
        return _file(p, value, where)
    return _object(value)


def input_value(p: ParamSpec, text: Any) -> Any:
    """The form value of input ``p`` -> internal (multivalues: a JSON array, or items
    separated by ";"); None when not supplied (empty string)."""
    if not p.multi:
        return input_item(p, text)
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return None
    if isinstance(text, str):
        stripped = text.strip()
        if stripped.startswith("["):
            items = _json_text(stripped, f"parameter {p.name!r}")
        elif stripped.startswith("{") or p.type not in (ParamType.STRING, ParamType.INTEGER, ParamType.NUMBER,
                                                         ParamType.BOOLEAN, ParamType.DATETIME):
            items = [stripped]
        else:
            items = [v for v in stripped.split(";")]
    else:
        items = text if isinstance(text, list) else [text]
    out = [input_item(p, v) for v in items]
    return [v for v in out if v is not None]


def _lookup(params: Mapping[str, Any], name: str) -> Any:
    if name in params:
        return params[name]
    lowered = name.lower()
    return next((v for k, v in params.items() if k.lower() == lowered), None)


_WKT = re.compile(r"^(PROJCS|GEOGCS|PROJCRS|GEOGCRS|GEODCRS|COMPD_CS|COMPOUNDCRS)\b", re.IGNORECASE)


def sr_param(raw: Any, where: str) -> int | None:
    """A spatial reference parameter (``outSR``, ``env:outSR``, ``context.outSR``): a wkid,
    spatialReference JSON (``{"wkid"}``, ``{"latestWkid"}``, ``{"wkt"}``) or bare WKT."""
    if raw in (None, ""):
        return None
    value = raw.strip() if isinstance(raw, str) else raw
    if isinstance(value, str):
        if value.startswith("{"):
            value = _json_text(value, where)
        elif _WKT.match(value):
            return geo.srid_from_wkt(value, where)
    return geo.srid_from_sr(value, where)


def _env_srid(params: Mapping[str, Any], context: dict[str, Any], key: str) -> int | None:
    if context.get(key) not in (None, ""):
        return sr_param(context[key], f"context.{key}")
    return sr_param(_lookup(params, f"env:{key}"), f"env:{key}")


@dataclass(frozen=True)
class RenderOptions:
    """How outputs are written: z and m values kept or not, feature cap per FeatureSet, and
    the spatial reference geometries are reprojected to (``outSR`` of a result request)."""

    return_z: bool = False
    return_m: bool = False
    max_records: int | None = None
    out_srid: int | None = None


def execute_request(
    spec: ProcessSpec,
    service: GPServiceSpec,
    params: Mapping[str, Any],
    *,
    principal: Principal,
    mode: ExecutionMode,
    request_bytes: int = 0,
    trace_header: str | None = None,
    layers_root: str | None = None,
) -> ExecutionRequest:
    """The form fields of ``execute`` (sync) or ``submitJob`` (async) -> the internal request.

    Every input takes its form field (names matched exactly, else without regard to case);
    an empty string means "not supplied". Fields that are no input of the task are ignored,
    as Esri does.
    """
    inputs: dict[str, Any] = {}
    with geo.nesting_budget():  # one bound on polygon ring nesting for all the inputs
        for p in spec.inputs:
            value = input_value(p, _lookup(params, p.name))
            if value is not None:
                inputs[p.name] = _own_layers(value, layers_root)
    context = _structured(_lookup(params, "context") or "", "context") or {}
    if not isinstance(context, dict):
        raise errors.InvalidParameterValue("context must be a JSON object {outSR, processSR, extent}")
    options = {
        "gpserver": {
            "service": service.path,
            "return_z": bool(parse_bool(_lookup(params, "returnZ"), "returnZ")),
            "return_m": bool(parse_bool(_lookup(params, "returnM"), "returnM")),
        }
    }
    return ExecutionRequest(
        process_id=spec.id,
        inputs=inputs,
        principal=principal,
        surface=Surface.GPSERVER,
        mode=mode,
        outputs=_hosted_outputs(spec, _lookup(params, "esri_out_feature_service_name")),
        # An OGC client reading this job's results gets a JSON document of every output.
        response="document",
        out_srid=_env_srid(params, context, "outSR"),
        process_srid=_env_srid(params, context, "processSR"),
        options=options,
        # Esri clients send none; a proxy or gateway in front of Honua may.
        trace_parent=traceparent_normalize(trace_header),
        request_bytes=request_bytes,
    )


def _own_layers(value: Any, root: str | None) -> Any:
    """A feature service URL that is one of this server's layers -> a layer reference whose
    filter is the where clause (other URLs are read as Esri feature services)."""
    if isinstance(value, list):
        return [_own_layers(v, root) for v in value]
    if not (isinstance(value, dict) and value.get("kind") == ESRI_FEATURE_SERVICE):
        return value
    cid = collection_in_url(str(value["href"]), root)
    if cid is None:
        return value
    ref: dict[str, Any] = {"layer": cid}
    if value.get("filter"):
        ref["filter"] = value["filter"]
        ref["filter_lang"] = "sql-where"
    return ref


def _hosted_outputs(spec: ProcessSpec, name: Any) -> dict[str, OutputRequest]:
    """``esri_out_feature_service_name`` (ArcGIS clients' "create a hosted layer of the
    output"): the first feature output is published as that layer, others as
    ``<name>_<output>``."""
    if name in (None, ""):
        return {}
    if not isinstance(name, str):
        raise errors.InvalidParameterValue("esri_out_feature_service_name must be a name")
    text = name.strip()
    if text.startswith("{"):
        # The Python client may send {"serviceProperties": {"name": ...}, "itemProperties": ...}.
        doc = _json_text(text, "esri_out_feature_service_name")
        text = str(((doc or {}).get("serviceProperties") or {}).get("name") or "") if isinstance(doc, dict) else ""
    if not text:
        raise errors.InvalidParameterValue("esri_out_feature_service_name must be a name")
    features = [o for o in spec.outputs if o.type is ParamType.FEATURE_COLLECTION]
    if not features:
        raise errors.InvalidParameterValue(f"task {spec.id!r} has no feature output to publish as a layer")
    return {
        o.name: OutputRequest(
            register_as={"collection_id": text if i == 0 else f"{text}_{o.name}", "title": text, "ttl_seconds": None}
        )
        for i, o in enumerate(features)
    }


def layer_messages(result: ExecutionResult, layers_root: str) -> list[dict[str, str]]:
    """Informative messages naming the layers a succeeded run published, with their URLs."""
    if result.status is not RunStatus.SUCCEEDED or result.dismissed:
        return []
    out = []
    for name, req in (result.request.get("outputs") or {}).items():
        reg = req.get("register_as") if isinstance(req, dict) else None
        if isinstance(reg, dict):
            url = f"{layers_root}collections/{reg['collection_id']}"
            out.append({"type": MESSAGE_TYPES[MessageType.INFO], "description": f"Output {name} layer: {url}"})
    return out


def trace_headers(result: ExecutionResult) -> dict[str, str]:
    """The trace a submitted run was recorded under, echoed to the client."""
    return {"traceparent": result.trace_parent} if result.trace_parent else {}


def render_options(
    result: ExecutionResult, service: GPServiceSpec, query: Mapping[str, Any] | None = None
) -> RenderOptions:
    """What the submission asked for (returnZ/returnM), overridden by the result request's own
    query, capped at the service's maximumRecords; the query's ``outSR`` reprojects.

    ``returnType=data`` asks for data rather than a result map service's image: Honua has no
    result map services, so every result is data and that is the only value accepted.
    """
    stored = (result.request.get("options") or {}).get("gpserver") or {}
    query = query or {}
    z = parse_bool(_lookup(query, "returnZ"), "returnZ")
    m = parse_bool(_lookup(query, "returnM"), "returnM")
    return_type = str(_lookup(query, "returnType") or "").strip()
    if return_type and return_type.lower() != "data":
        raise errors.InvalidParameterValue(
            f"returnType {return_type!r} is not supported: this service has no result map service, "
            "results are always data (returnType=data)"
        )
    return RenderOptions(
        return_z=bool(stored.get("return_z")) if z is None else z,
        return_m=bool(stored.get("return_m")) if m is None else m,
        max_records=service.maximum_records or None,
        out_srid=sr_param(_lookup(query, "outSR"), "outSR"),
    )


def reprojected(p: ParamSpec, value: Any, out_srid: int | None) -> Any:
    """One internal value with its geometries in ``out_srid`` (feature collections, geometries
    and bounding boxes; other values as they are)."""
    if out_srid is None or not isinstance(value, dict):
        return value
    src = int(value.get("srid") or DEFAULT_SRID)
    if src == out_srid:
        return value
    if p.type is ParamType.BBOX and isinstance(value.get("bbox"), list):
        return {**value, "bbox": geo.reproject_bbox(value["bbox"], src, out_srid), "srid": out_srid}
    if p.type not in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION):
        return value
    if value.get("type") == "FeatureCollection":
        features = [
            {**f, "geometry": geo.reproject_geometry(f.get("geometry"), src, out_srid)} if isinstance(f, dict) else f
            for f in value.get("features") or []
        ]
        return {**value, "features": features, "srid": out_srid}
    return {**(geo.reproject_geometry(value, src, out_srid) or {}), "srid": out_srid}


# --- output values ---------------------------------------------------------------------------


def _integer_type(values: Sequence[Any]) -> str:
    fits = all(-_INT32 - 1 <= v <= _INT32 for v in values if isinstance(v, int))
    return "esriFieldTypeInteger" if fits else "esriFieldTypeBigInteger"


def _infer_field(name: str, values: Sequence[Any]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        ftype = "esriFieldTypeSmallInteger"
    elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        ftype = _integer_type(present)
    elif present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        ftype = "esriFieldTypeDouble"
    else:
        ftype = "esriFieldTypeString"
    return _field(name, ftype, values)


def _field(name: str, ftype: str, values: Sequence[Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "type": ftype, "alias": name}
    if ftype == "esriFieldTypeString":
        longest = max((len(v) if isinstance(v, str) else len(_text(v)) for v in values if v is not None), default=0)
        doc["length"] = max(255, longest)
    return doc


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _declared_field(name: str, internal: str, values: Sequence[Any]) -> dict[str, Any]:
    if internal == "integer":
        if any(isinstance(v, float) for v in values):
            return _field(name, "esriFieldTypeDouble", values)
        return _field(name, _integer_type(values), values)
    if internal == "number":
        return _field(name, "esriFieldTypeDouble", values)
    if internal == "boolean":
        return _field(name, "esriFieldTypeSmallInteger", values)
    if internal == "datetime":
        return _field(name, "esriFieldTypeDate", values)
    if internal == "string":
        return _field(name, "esriFieldTypeString", values)
    return _infer_field(name, values)


def _attribute(value: Any, ftype: str) -> Any:
    if value is None:
        return None
    if ftype == "esriFieldTypeDate":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        return iso_to_epoch_ms(str(value))
    if ftype == "esriFieldTypeSmallInteger" and isinstance(value, bool):
        return int(value)
    if ftype == "esriFieldTypeString":
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _geometry_hint(p: ParamSpec | None, fallback: str = geo.POLYGON) -> str:
    for t in (p.geometry_types if p else ()):
        kind = geo.GEOJSON_KIND.get(t)
        if kind:
            return kind
    return fallback


def featureset_out(
    value: Any, opts: RenderOptions, *, param: ParamSpec | None = None
) -> dict[str, Any]:
    """An internal feature_collection (or geometry) -> an Esri FeatureSet: one geometryType
    (the highest dimension present), an OBJECTID field first, then the declared fields, then
    every other property with its type inferred from the values."""
    if not isinstance(value, dict):
        value = {"type": "FeatureCollection", "features": []}
    if value.get("type") != "FeatureCollection":
        geom = {k: v for k, v in value.items() if k != "srid"}
        value = {"type": "FeatureCollection", "srid": value.get("srid", DEFAULT_SRID),
                 "features": [{"type": "Feature", "geometry": geom, "properties": {}}]}
    srid = int(value.get("srid") or DEFAULT_SRID)
    features = [f for f in value.get("features") or [] if isinstance(f, dict)]
    exceeded = opts.max_records is not None and len(features) > opts.max_records
    if exceeded:
        features = features[: opts.max_records]
    geoms = [f.get("geometry") for f in features]
    kind = geo.choose_kind([geo.geojson_kind(g) for g in geoms], _geometry_hint(param))
    z = opts.return_z and any(geo.has_dimension(g, 2) for g in geoms)
    m = opts.return_m and any(geo.has_dimension(g, 3) for g in geoms)
    props = [f.get("properties") or {} for f in features]
    names: list[str] = []
    declared = {str(d["name"]): str(d.get("type")) for d in value.get("fields") or [] if isinstance(d, dict) and d.get("name")}
    for name in declared:
        if name not in names:
            names.append(name)
    for row in props:
        for name in row:
            if name not in declared and name not in names:
                names.append(name)
    names = [n for n in names if n.upper() != OID_FIELD]
    fields = [{"name": OID_FIELD, "type": "esriFieldTypeOID", "alias": OID_FIELD}]
    for name in names:
        column = [row.get(name) for row in props]
        fields.append(_declared_field(name, declared[name], column) if name in declared else _infer_field(name, column))
    types = {f["name"]: f["type"] for f in fields}
    out_features = []
    for i, (shape, row) in enumerate(zip(geoms, props, strict=True)):
        attributes: dict[str, Any] = {OID_FIELD: i + 1}
        for name in names:
            attributes[name] = _attribute(row.get(name), types[name])
        out_features.append({"attributes": attributes, "geometry": geo.geojson_to_esri(shape, kind, z=z, m=m)})
    return {
        "displayFieldName": "",
        "geometryType": kind,
        "spatialReference": geo.sr_json(srid),
        "hasZ": z,
        "hasM": m,
        "fields": fields,
        "features": out_features,
        "exceededTransferLimit": exceeded,
    }


def featureset_schema(p: ParamSpec) -> dict[str, Any]:
    """The defaultValue of a feature-set parameter: its schema with no features."""
    return {
        "displayFieldName": "",
        "geometryType": _geometry_hint(p, geo.POINT if p.type is ParamType.GEOMETRY else geo.POLYGON),
        "spatialReference": geo.sr_json(DEFAULT_SRID),
        "hasZ": False,
        "hasM": False,
        "fields": [{"name": OID_FIELD, "type": "esriFieldTypeOID", "alias": OID_FIELD}],
        "features": [],
        "exceededTransferLimit": False,
    }


FileUrl = Callable[[str, dict[str, Any]], str]


def _file_out(name: str, value: Any, file_url: FileUrl | None) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if value.get("upload"):
        return {"itemID": str(value["upload"])}
    url = file_url(name, value) if file_url is not None else value.get("href")
    doc: dict[str, Any] = {"url": url}
    media = str(value.get("media_type") or "")
    if "tiff" in media:
        doc["format"] = "tif"
    return doc


def esri_item(p: ParamSpec, value: Any, opts: RenderOptions, file_url: FileUrl | None = None) -> Any:
    """One internal value of parameter ``p`` -> its GP value."""
    t = p.type
    if value is None:
        return None
    value = reprojected(p, value, opts.out_srid)
    if t is ParamType.DATETIME:
        return iso_to_epoch_ms(str(value))
    if t is ParamType.LINEAR_UNIT and isinstance(value, dict):
        return {"distance": value.get("value"), "units": unit_out(str(value.get("unit")))}
    if t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION):
        return featureset_out(value, opts, param=p)
    if t is ParamType.BBOX and isinstance(value, dict):
        box = list(value.get("bbox") or [])
        doc: dict[str, Any] = {}
        if len(box) == 6:
            doc = {"xmin": box[0], "ymin": box[1], "xmax": box[3], "ymax": box[4], "zmin": box[2], "zmax": box[5]}
        elif len(box) == 4:
            doc = {"xmin": box[0], "ymin": box[1], "xmax": box[2], "ymax": box[3]}
        doc["spatialReference"] = geo.sr_json(int(value.get("srid") or DEFAULT_SRID))
        return doc
    if t is ParamType.SPATIAL_REFERENCE and isinstance(value, dict):
        if "srid" in value:
            return geo.sr_json(int(value["srid"]))
        return {"wkt": value.get("wkt")}
    if t in (ParamType.FILE, ParamType.RASTER):
        return _file_out(p.name, value, file_url)
    if t is ParamType.OBJECT:
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if t is ParamType.STRING and not isinstance(value, str):
        return _text(value)
    return value


def esri_value(p: ParamSpec, value: Any, opts: RenderOptions, file_url: FileUrl | None = None) -> Any:
    if p.multi:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        return [esri_item(p, v, opts, file_url) for v in items]
    return esri_item(p, value, opts, file_url)


def default_value(p: ParamSpec) -> Any:
    """``defaultValue`` of a parameter (always present; feature sets give their schema)."""
    if p.type in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION) and not p.multi:
        return featureset_schema(p)
    if p.default is None:
        return None
    return esri_value(p, p.default, RenderOptions())


# --- descriptions ------------------------------------------------------------------------------


def data_type(p: ParamSpec) -> str:
    base = DATA_TYPES[p.type]
    return f"GPMultiValue:{base}" if p.multi else base


def _doc_text(text: str) -> str:
    """Text the Python client pastes into a generated docstring: no triple quotes, no trailing
    quote or backslash (either would end or break the string literal)."""
    return " ".join(text.replace('"""', "'''").split()).rstrip('"\\')


def output_names(spec: ProcessSpec) -> dict[str, str]:
    """The GP name of each output: its own, or ``output_<name>`` when an input has that name.

    OGC's test process (echo) names its outputs like its inputs on purpose; the Python
    client's generated code keeps inputs and outputs in one dict by name, so a clash would
    overwrite the input (and it then sends the output's displayName instead).
    """
    taken = {p.name.lower() for p in spec.inputs}
    names: dict[str, str] = {}
    for o in spec.outputs:
        name = o.name
        while name.lower() in taken:
            name = f"output_{name}"
        taken.add(name.lower())
        names[o.name] = name
    return names


def output_param(spec: ProcessSpec, name: str) -> ParamSpec:
    """The output a GP name refers to (its published name, or the process's own name)."""
    published = output_names(spec)
    by_gp = {gp.lower(): internal for internal, gp in published.items()}
    internal = by_gp.get(name.lower())
    if internal is None:
        return _param(spec.outputs, name, "result")
    return next(o for o in spec.outputs if o.name == internal)


def param_description(p: ParamSpec, *, direction: str, name: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name or p.name,
        "dataType": data_type(p),
        "displayName": _doc_text(p.title or p.name.replace("_", " ").title()),
        "description": _doc_text(p.description),
        "direction": direction,
        "defaultValue": default_value(p),
    }
    if direction == DIRECTION_OUT:
        doc["parameterType"] = DERIVED
    else:
        doc["parameterType"] = REQUIRED if p.required and p.default is None else OPTIONAL
    doc["category"] = ""
    if p.choices:
        doc["choiceList"] = [str(c) if p.type is ParamType.STRING else c for c in p.choices]
        doc["filter"] = {"type": "valueList", "list": doc["choiceList"]}
    elif p.minimum is not None or p.maximum is not None:
        doc["filter"] = {"type": "range", "minimum": p.minimum, "maximum": p.maximum}
    return doc


def task_description(spec: ProcessSpec, service: GPServiceSpec) -> dict[str, Any]:
    names = output_names(spec)
    return {
        "name": spec.id,
        "displayName": _doc_text(spec.title or spec.id),
        "description": _doc_text(spec.description),
        "category": "",
        "helpUrl": "",
        "executionType": service.execution_type.value,
        "parameters": [
            *(param_description(p, direction=DIRECTION_IN) for p in spec.inputs),
            *(param_description(p, direction=DIRECTION_OUT, name=names[p.name]) for p in spec.outputs),
        ],
    }


def service_description(service: GPServiceSpec, *, uploads: bool = True) -> dict[str, Any]:
    return {
        "currentVersion": CURRENT_VERSION,
        "serviceDescription": service.description,
        "tasks": [t.id for t in service.tasks],
        "executionType": service.execution_type.value,
        # Must be present: arcgis-python reads it after every async job ("" = no map service).
        "resultMapServerName": "",
        "maximumRecords": service.maximum_records,
        "capabilities": "Uploads" if uploads else "",
    }


SNIPPET_LENGTH = 250  # what ArcGIS keeps of an item's summary


def _snippet(text: str) -> str:
    """The first sentence of a description, at most 250 characters."""
    flat = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", flat)
    first = match.group(1) if match else flat
    return first if len(first) <= SNIPPET_LENGTH else first[: SNIPPET_LENGTH - 1].rstrip() + "…"


def service_tags(service: GPServiceSpec) -> list[str]:
    """The tags of a service: its tasks' keywords, in order, each once."""
    tags: list[str] = []
    for task in service.tasks:
        for keyword in task.keywords:
            if keyword.lower() not in (t.lower() for t in tags):
                tags.append(keyword)
    return tags


def item_info(service: GPServiceSpec) -> dict[str, Any]:
    """``GPServer/info/iteminfo``: the service's item information card (title, snippet,
    description, tags from its tasks' keywords)."""
    snippet = _snippet(service.description)
    return {
        "culture": "en-US",
        "name": service.name,
        "guid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"honua:gpserver:{service.path}")).upper(),
        "catalogPath": "",
        "snippet": snippet,
        "description": service.description,
        "summary": snippet,
        "title": service.name.replace("_", " "),
        "tags": service_tags(service),
        "type": "Geoprocessing Service",
        "typeKeywords": ["ArcGIS Server", "Geoprocessing", "Service", "Tool"],
        "thumbnail": "",
        "url": "",
        "extent": None,
        "spatialReference": "",
        "accessInformation": "",
        "licenseInfo": "",
    }


def service_info(service: GPServiceSpec, *, service_url: str) -> dict[str, Any]:
    """``GPServer/info``: the item information and where its metadata is (no thumbnail)."""
    return {
        "currentVersion": CURRENT_VERSION,
        "itemInfo": item_info(service),
        "itemInfoUrl": f"{service_url}/info/iteminfo",
        "metadataUrl": f"{service_url}/info/metadata",
        "thumbnailUrl": None,
    }


def service_metadata_xml(service: GPServiceSpec, *, style: str | None = None) -> bytes:
    """``GPServer/info/metadata``: the item description as ArcGIS metadata XML (the default
    "Item Description" style; FGDC and ISO 19139 styles are not kept)."""
    import xml.etree.ElementTree as ET

    if style not in (None, ""):
        raise errors.InvalidParameterValue(
            f"metadata format {style!r} is not available; this service has item description metadata only"
        )
    info = item_info(service)
    root = ET.Element("metadata", {"xml:lang": "en"})
    esri = ET.SubElement(root, "Esri")
    ET.SubElement(esri, "ArcGISFormat").text = "1.0"
    ET.SubElement(esri, "ArcGISstyle").text = "Item Description"
    ident = ET.SubElement(root, "dataIdInfo")
    ET.SubElement(ET.SubElement(ident, "idCitation"), "resTitle").text = info["title"]
    ET.SubElement(ident, "idAbs").text = info["description"]
    ET.SubElement(ident, "idPurp").text = info["summary"]
    keys = ET.SubElement(ident, "searchKeys")
    for tag in info["tags"]:
        ET.SubElement(keys, "keyword").text = tag
    ET.SubElement(ident, "idCredit").text = ""
    ET.SubElement(ET.SubElement(ET.SubElement(ident, "resConst"), "Consts"), "useLimit").text = ""
    ET.SubElement(ET.SubElement(root, "distInfo"), "distFormat")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


class NoThumbnail(errors.HonuaError):
    code = "no-thumbnail"
    status = 404
    title = "The service has no thumbnail"


def catalog(folders: Sequence[str], services: Sequence[GPServiceSpec]) -> dict[str, Any]:
    """``rest/services`` (root: folders and root services) or a folder's listing."""
    return {
        "currentVersion": CURRENT_VERSION,
        "folders": list(folders),
        "services": [{"name": s.path, "type": "GPServer"} for s in services],
    }


def server_info(auth_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "currentVersion": CURRENT_VERSION,
        "fullVersion": FULL_VERSION,
        "soapUrl": None,
        "secureSoapUrl": None,
        "authInfo": auth_info,
    }


# --- jobs and results ----------------------------------------------------------------------------


def job_status(result: ExecutionResult) -> str:
    """esriJobStatus of a run. A dismissed run that had finished is "deleted"; one dismissed
    while active shows its cancellation (clients polling it stop on esriJobCancelled)."""
    if result.dismissed and result.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT):
        return JOB_DELETED
    return STATUS[result.status]


def messages(result: ExecutionResult) -> list[dict[str, str]]:
    """The run's messages as esriJobMessageType* entries; a failure's error is the last one."""
    out = [{"type": MESSAGE_TYPES.get(m.type, MESSAGE_TYPES[MessageType.INFO]), "description": m.text}
           for m in result.messages]
    if result.error and result.status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
        text = str(result.error.get("message") or "Failed.")
        if not any(m["description"] == text for m in out):
            out.append({"type": MESSAGE_TYPES[MessageType.ERROR], "description": text})
    return out


def task_of(result: ExecutionResult, service: GPServiceSpec, task: str | None, job: str) -> ProcessSpec:
    """The task a job belongs to, when it is visible under this URL (a job of another task,
    or of a process this service does not hold, is "no such job" here)."""
    spec = service.task(result.process_id)
    if spec is None or (task is not None and task.lower() != spec.id.lower()):
        raise errors.NoSuchJob(f"no job {job!r} under this " + ("task" if task else "service"))
    return spec


def job_document(
    result: ExecutionResult, spec: ProcessSpec, *, return_messages: bool = True, layers_root: str | None = None
) -> dict[str, Any]:
    """The job resource: status, results (once succeeded) and inputs as paramUrls, messages,
    progress."""
    status = job_status(result)
    doc: dict[str, Any] = {"jobId": job_id(result.run_id), "jobStatus": status}
    if status == "esriJobSucceeded":
        doc["results"] = {gp: {"paramUrl": f"results/{gp}"} for gp in output_names(spec).values()}
    doc["inputs"] = {p.name: {"paramUrl": f"inputs/{p.name}"} for p in spec.inputs}
    if return_messages:
        doc["messages"] = messages(result) + (layer_messages(result, layers_root) if layers_root else [])
    last = result.messages[-1].text if result.messages else ""
    doc["progress"] = {"type": "default", "message": last, "percent": max(0, min(100, int(result.progress)))}
    return doc


def submit_document(result: ExecutionResult) -> dict[str, Any]:
    """The answer of ``submitJob``."""
    return {"jobId": job_id(result.run_id), "jobStatus": job_status(result)}


class JobStillRunning(errors.HonuaError):
    """A synchronous ``execute`` that did not finish within the inline deadline."""

    code = "job-still-running"
    status = 504
    title = "The task did not finish in time"


class JobNotSucceeded(errors.HonuaError):
    code = "job-not-succeeded"
    status = 400
    title = "The job has no results"


def _all_errors(cls: type[errors.HonuaError]) -> list[type[errors.HonuaError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _all_errors(sub))]


def error_from_run(result: ExecutionResult) -> errors.HonuaError:
    """Why a finished run has no results: its error (with every message as a detail), or its
    cancellation / deletion."""
    details = [m.text for m in result.messages]
    jid = job_id(result.run_id)
    if result.dismissed and result.status is not RunStatus.CANCELLED:
        return JobNotSucceeded(f"job {jid} was deleted; its results were removed", details=details)
    if result.status in (RunStatus.CANCELLED, RunStatus.CANCELLING):
        return JobNotSucceeded(f"job {jid} was cancelled; it has no results", details=details)
    error = result.error or {}
    code = str(error.get("code") or errors.ExecutionFailed.code)
    classes = {c.code: c for c in _all_errors(errors.HonuaError)}
    cls = classes.get(code, errors.ExecutionFailed)
    text = str(error.get("message") or cls.title)
    exc = cls(f"Job failed: {text}" if result.mode is ExecutionMode.ASYNC else text,
              details=[*details, *[str(d) for d in error.get("details") or []]] or [text])
    exc.code = code
    return exc


def _results_list(
    spec: ProcessSpec, values: Mapping[str, Any], opts: RenderOptions, file_url: FileUrl | None
) -> list[dict[str, Any]]:
    names = output_names(spec)
    return [
        {"paramName": names[o.name], "dataType": data_type(o), "value": esri_value(o, values.get(o.name), opts, file_url)}
        for o in spec.outputs
    ]


def needs_stored_outputs(result: ExecutionResult) -> bool:
    """A finished sync run whose answer lacks some outputs (ended by another worker, or outputs
    spilled to artifacts): they have to be read back from the ledger."""
    return result.status is RunStatus.SUCCEEDED and any(
        name not in (result.outputs or {}) for name in result.output_links
    )


def execute_response(
    result: ExecutionResult,
    values: Mapping[str, Any],
    spec: ProcessSpec,
    opts: RenderOptions,
    *,
    job_url: str,
    file_url: FileUrl | None = None,
    layers_root: str | None = None,
) -> dict[str, Any]:
    """A GP result (``results`` and ``messages``) of a finished synchronous run.

    A run still going when the inline deadline passed answers an error that names the job to
    poll (Esri's synchronous services answer an error on timeout too; a client can switch to
    the job resource, and the work is not lost or repeated).
    """
    if not result.is_finished:
        jid = job_id(result.run_id)
        raise JobStillRunning(
            f"The task did not finish within the synchronous time limit; it continues as job {jid}. "
            f"Poll {job_url} for its status and results.",
            details=[job_url],
            jobId=jid,
            jobStatus=job_status(result),
        )
    if result.status is not RunStatus.SUCCEEDED or result.dismissed:
        raise error_from_run(result)
    extra = layer_messages(result, layers_root) if layers_root else []
    return {"results": _results_list(spec, values, opts, file_url), "messages": messages(result) + extra}


def _param(params: Sequence[ParamSpec], name: str, kind: str) -> ParamSpec:
    found = next((p for p in params if p.name == name), None)
    if found is None:
        found = next((p for p in params if p.name.lower() == name.lower()), None)
    if found is None:
        raise errors.NoSuchOutput(
            f"no {kind} parameter {name!r}; they are: " + ", ".join(p.name for p in params)
        )
    return found


def result_document(
    result: ExecutionResult,
    values: Mapping[str, Any],
    spec: ProcessSpec,
    name: str,
    opts: RenderOptions,
    file_url: FileUrl | None = None,
) -> dict[str, Any]:
    """``jobs/<id>/results/<param>``: one output of a succeeded job."""
    p, value = result_value(result, values, spec, name)
    gp_name = output_names(spec)[p.name]
    return {"paramName": gp_name, "dataType": data_type(p), "value": esri_value(p, value, opts, file_url)}


def result_value(
    result: ExecutionResult, values: Mapping[str, Any], spec: ProcessSpec, name: str
) -> tuple[ParamSpec, Any]:
    """The output a result request names and its internal value (the job must have succeeded)."""
    p = output_param(spec, name)
    if not result.is_finished:
        raise errors.ResultNotReady(
            f"job {job_id(result.run_id)} is {job_status(result)}; its results are not ready"
        )
    if result.status is not RunStatus.SUCCEEDED or result.dismissed:
        raise error_from_run(result)
    return p, values.get(p.name)


def input_value_of(spec: ProcessSpec, inputs: Mapping[str, Any], name: str) -> tuple[ParamSpec, Any]:
    """The input an input request names and the internal value the job ran with."""
    p = _param(spec.inputs, name, "input")
    return p, inputs.get(p.name)


def file_bytes(
    result: ExecutionResult, values: Mapping[str, Any], spec: ProcessSpec, name: str
) -> tuple[bytes, str]:
    """The bytes and media type of a file output held inline (``results/<param>/file``)."""
    p = output_param(spec, name)
    if result.status is not RunStatus.SUCCEEDED or result.dismissed:
        raise error_from_run(result)
    value = values.get(p.name)
    if p.type not in (ParamType.FILE, ParamType.RASTER) or not isinstance(value, dict) or "value" not in value:
        raise errors.NoSuchOutput(f"result {p.name!r} has no file to download here")
    raw = value["value"]
    if str(value.get("encoding") or "base64") == "base64":
        data = base64.b64decode(str(raw))
    else:
        data = raw.encode() if isinstance(raw, str) else orjson.dumps(raw)
    return data, str(value.get("media_type") or "application/octet-stream")


def input_document(
    spec: ProcessSpec, inputs: Mapping[str, Any], name: str, opts: RenderOptions
) -> dict[str, Any]:
    """``jobs/<id>/inputs/<param>``: one input as the job received it (defaults applied)."""
    p, value = input_value_of(spec, inputs, name)
    if isinstance(value, dict) and isinstance(value.get("ref"), dict) and "source" in value:
        # A catalog layer: shown as the reference the job was given, not its data.
        ref = value["ref"]
        doc = {"layer": ref.get("layer")} | ({"filter": ref["filter"]} if ref.get("filter") else {})
        return {"paramName": p.name, "dataType": data_type(p), "value": doc}
    return {"paramName": p.name, "dataType": data_type(p), "value": esri_value(p, value, opts)}


# --- errors ------------------------------------------------------------------------------------


def error_document(code: int, message: str, details: Sequence[str] = (), message_code: str | None = None) -> dict[str, Any]:
    """The Esri error envelope (answered with HTTP 200: clients read the body)."""
    error: dict[str, Any] = {"code": code, "message": message, "details": [str(d) for d in details]}
    if message_code:
        error["messageCode"] = message_code
    return {"error": error}


_JOB_UUID = re.compile(r"\b(jobs?) ([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\b")


def job_ids_in(text: str) -> str:
    """Control-plane messages name runs by UUID; on this surface a job is "j" + 32 hex."""
    return _JOB_UUID.sub(lambda m: f"{m.group(1)} j" + "".join(m.groups()[1:]).lower(), text)


def honua_error_document(exc: errors.HonuaError) -> dict[str, Any]:
    doc = error_document(exc.status, job_ids_in(exc.message), [job_ids_in(d) for d in exc.details], exc.code)
    for key in ("jobId", "jobStatus"):
        if key in exc.extra:
            doc[key] = exc.extra[key]
    return doc


INVALID_URL = error_document(400, "Invalid URL", ["Invalid URL"], "invalid-url")


# --- uploads -------------------------------------------------------------------------------------


def upload_item(item: Any) -> dict[str, Any]:
    """An uploaded item (``UploadItem``) as Esri's item object."""
    return {
        "itemID": str(item.id),
        "itemName": item.item_name,
        "description": item.description or "",
        "date": int(item.created_at.timestamp() * 1000) if item.created_at else None,
        "committed": bool(item.committed),
        "size": int(item.size or 0),
    }


def upload_answer(item: Any) -> dict[str, Any]:
    """The answer of upload, register, uploadPart and commit."""
    return {"success": True, "item": upload_item(item)}


def part_number(text: Any) -> int:
    """``partNumber`` of uploadPart (1-based)."""
    if text in (None, ""):
        raise errors.MissingParameter("uploadPart needs a partNumber")
    return _integer(text, "partNumber")


def part_list(text: Any) -> list[int] | None:
    """``parts`` of commit ("1,2,3"; also a JSON array); None: every part in order."""
    if text in (None, ""):
        return None
    raw = str(text).strip()
    items = _json_text(raw, "parts") if raw.startswith("[") else [v for v in re.split(r"[,\s]+", raw) if v]
    if not isinstance(items, list):
        raise errors.InvalidParameterValue("parts must list part numbers: 1,2,3")
    return [_integer(v, "parts") for v in items]


# --- layers --------------------------------------------------------------------------------------

_ESRI_FIELD_TYPES = {
    "string": "esriFieldTypeString",
    "integer": "esriFieldTypeInteger",
    "number": "esriFieldTypeDouble",
    "boolean": "esriFieldTypeSmallInteger",
    "datetime": "esriFieldTypeDate",
}


def ingest_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The form of ``uploads/<itemID>/ingest``: collectionId (required), title, description,
    storage (hosted|file), srid, sublayer."""
    collection_id = str(params.get("collectionId") or "").strip()
    if not collection_id:
        raise errors.MissingParameter("ingest needs a collectionId (the new layer's id)")
    storage = str(params.get("storage") or "hosted").strip()
    if storage not in ("hosted", "file"):
        raise errors.InvalidParameterValue(f"storage must be 'hosted' or 'file', not {storage!r}")
    srid = params.get("srid")
    return {
        "collection_id": collection_id,
        "title": str(params.get("title") or collection_id),
        "description": str(params.get("description") or ""),
        "storage": storage,
        "srid": _integer(srid, "srid") if srid not in (None, "") else None,
        "sublayer": str(params.get("sublayer") or "") or None,
    }


def layer_answer(info: LayerInfo, *, url: str) -> dict[str, Any]:
    """A layer made by ``ingest``: its Honua URL (usable as a GPServer ``{"url": ...}`` input
    and an OGC API - Features collection) and what Esri clients want to know of it."""
    layer: dict[str, Any] = {
        "id": info.id,
        "title": info.title,
        "url": url,
        "itemsUrl": url + "/items",
        "geometryType": geo.GEOJSON_KIND.get(info.geometry_type),
        "spatialReference": geo.sr_json(info.srid),
        "featureCount": info.feature_count,
        "fields": [
            {"name": f["name"], "type": _ESRI_FIELD_TYPES.get(f.get("type", ""), "esriFieldTypeString")}
            for f in info.fields
        ],
    }
    if info.extent is not None:
        xmin, ymin, xmax, ymax = info.extent
        layer["extent"] = {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "spatialReference": {"wkid": 4326}}
    return {"success": True, "layer": layer}
