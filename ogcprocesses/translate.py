"""OGC API - Processes - Part 1: Core 1.0 wire format <-> the internal contract.

Pure functions: an execute body -> ``ExecutionRequest``; a ``ProcessSpec`` -> process
summary / description (a JSON schema per input and output); an ``ExecutionResult`` ->
statusInfo, results document or raw bodies. Views parse, call the control plane once and
hand the result to these functions; nothing here touches the database or HTTP objects.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from controlplane import exceptions as errors
from controlplane.contracts import (
    LINEAR_UNITS,
    ExecutionMode,
    ExecutionRequest,
    ExecutionResult,
    OutputRequest,
    ParamSpec,
    ParamType,
    Principal,
    ProcessSpec,
    RunStatus,
    Subscriber,
    Surface,
)
from controlplane.selectors import RunFilter, RunPage
from controlplane.services.layerrefs import collection_in_url
from controlplane.services.outbound import outbound_url_precheck
from honua.tracecontext import traceparent_normalize

# --- vocabulary -----------------------------------------------------------------------------

CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
CONFORMANCE_CLASSES = (
    "core", "ogc-process-description", "json", "html", "oas30", "job-list", "callback", "dismiss",
)
# OGC API - Features - Part 1 on the same surface (translate_features.py)
FEATURES_CONF = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
FEATURES_CONFORMANCE_CLASSES = ("core", "oas30", "geojson")
EXCEPTION_TYPE = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
REL_CONFORMANCE = REL + "conformance"
REL_PROCESSES = REL + "processes"
REL_JOB_LIST = REL + "job-list"
REL_EXECUTE = REL + "execute"
REL_RESULTS = REL + "results"
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
GEOTIFF = "image/tiff; application=geotiff"

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
BBOX_SCHEMA = "https://schemas.opengis.net/ogcapi/processes/part1/1.0/openapi/schemas/bbox.yaml"
GEOMETRY_SCHEMA = (
    "https://schemas.opengis.net/ogcapi/features/part1/1.0/openapi/schemas/geometryGeoJSON.yaml"
)
FEATURE_COLLECTION_SCHEMA = (
    "https://schemas.opengis.net/ogcapi/features/part1/1.0/openapi/schemas/featureCollectionGeoJSON.yaml"
)

# A feature input may name a collection of this server (a catalog layer) instead of its value.
LAYER_REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "layerReference",
    "description": "A collection of this server (OGC API - Features), optionally narrowed by a bbox "
    "and a CQL2 text filter.",
    "required": ["layerReference"],
    "properties": {
        "layerReference": {
            "type": "object",
            "required": ["collectionId"],
            "properties": {
                "collectionId": {"type": "string"},
                "bbox": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                "bbox-crs": {"type": "string", "format": "uri"},
                "filter": {"type": "string"},
                "filter-lang": {"type": "string", "enum": ["cql2-text"]},
            },
        }
    },
}
# The link from a job to the layer its output was published as (OGC API - Common's
# relation of a collection to its items is not it; this names "the collection").
REL_COLLECTION = REL + "collection"

LIMIT_DEFAULT = 10
LIMIT_MAX = 10000

# Internal run status -> OGC statusCode (DESIGN §4); a dismissed run is "dismissed" whatever it was.
STATUS = {
    RunStatus.QUEUED: "accepted",
    RunStatus.WAITING: "accepted",
    RunStatus.RUNNING: "running",
    RunStatus.CANCELLING: "running",
    RunStatus.SUCCEEDED: "successful",
    RunStatus.FAILED: "failed",
    RunStatus.TIMED_OUT: "failed",
    RunStatus.CANCELLED: "dismissed",
}
OGC_STATUSES = ("accepted", "running", "successful", "failed", "dismissed")

_UNIT_ALIASES = {
    "m": "meter", "metre": "meter", "metres": "meter", "meters": "meter",
    "km": "kilometer", "kilometre": "kilometer", "kilometres": "kilometer", "kilometers": "kilometer",
    "cm": "centimeter", "mm": "millimeter", "ft": "foot", "feet": "foot", "mi": "mile", "miles": "mile",
    "nmi": "nautical_mile", "yd": "yard", "yards": "yard", "in": "inch", "inches": "inch",
    "degrees": "degree", "deg": "degree",
}
_QUALIFIED_KEYS = frozenset({"value", "mediaType", "encoding", "schema", "format"})
_EXECUTE_KEYS = frozenset({"inputs", "outputs", "response", "subscriber", "process", "id", "mode"})
_BY_REFERENCE = (ParamType.FILE, ParamType.RASTER, ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY)


# --- links ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    """Absolute URLs of this API, from the landing page URL (ends with "/")."""

    root: str

    def href(self, path: str = "", query: Mapping[str, Any] | None = None) -> str:
        base = self.root + path.lstrip("/")
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return f"{base}?{urlencode(params)}" if params else base

    def process(self, process_id: str) -> str:
        return self.href(f"processes/{process_id}")

    def job(self, run_id: uuid.UUID | str) -> str:
        return self.href(f"jobs/{run_id}")

    def results(self, run_id: uuid.UUID | str) -> str:
        return self.href(f"jobs/{run_id}/results")


def link(href: str, rel: str, media_type: str | None = None, title: str | None = None) -> dict[str, str]:
    doc = {"href": href, "rel": rel}
    if media_type:
        doc["type"] = media_type
    if title:
        doc["title"] = title
    return doc


def _self_links(href: str, query: Mapping[str, Any] | None = None, title: str = "") -> list[dict[str, str]]:
    q = {k: v for k, v in (query or {}).items() if k != "f"}
    sep = "&" if urlsplit(href).query else "?"
    own = f"{href}{sep}{urlencode(q)}" if q else href
    html_q = urlencode({**q, "f": "html"})
    return [
        link(own, "self", JSON, title or "this document"),
        link(f"{href}{sep}{html_q}", "alternate", HTML, "this document as HTML"),
    ]


def link_header(links: Sequence[dict[str, str]]) -> str:
    """RFC 8288 ``Link`` header value; ``monitor`` stays unquoted (the ETS matches rel=monitor)."""
    parts = []
    for item in links:
        rel = item["rel"]
        text = f"<{item['href']}>; rel={rel}" if re.fullmatch(r"[a-z-]+", rel) else f'<{item["href"]}>; rel="{rel}"'
        if item.get("type"):
            text += f'; type="{item["type"]}"'
        if item.get("title"):
            text += f'; title="{item["title"]}"'
        parts.append(text)
    return ", ".join(parts)


# --- landing page, conformance --------------------------------------------------------------


def landing_page(urls: Urls, *, title: str, description: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "links": [
            *_self_links(urls.href()),
            link(urls.href("api"), "service-desc", OPENAPI_MEDIA_TYPE, "the API definition (OpenAPI 3.0)"),
            link(urls.href("api", {"f": "html"}), "service-doc", HTML, "the API documentation"),
            link(urls.href("conformance"), REL_CONFORMANCE, JSON, "conformance classes"),
            link(urls.href("processes"), REL_PROCESSES, JSON, "the processes"),
            link(urls.href("jobs"), REL_JOB_LIST, JSON, "the jobs"),
            link(urls.href("collections"), "data", JSON, "the layers (OGC API - Features collections)"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {
        "conformsTo": [
            *(CONF + c for c in CONFORMANCE_CLASSES),
            *(FEATURES_CONF + c for c in FEATURES_CONFORMANCE_CLASSES),
        ]
    }


# --- process descriptions -------------------------------------------------------------------


def _media_types(p: ParamSpec) -> tuple[str, ...]:
    if p.media_types:
        return p.media_types
    return (GEOTIFF,) if p.type is ParamType.RASTER else (OCTETS,)


def _item_schema(p: ParamSpec) -> dict[str, Any]:
    t = p.type
    if t in (ParamType.STRING, ParamType.INTEGER, ParamType.NUMBER, ParamType.BOOLEAN):
        schema: dict[str, Any] = {"type": t.value}
        if p.choices:
            schema["enum"] = list(p.choices)
        if t in (ParamType.INTEGER, ParamType.NUMBER):
            if p.minimum is not None:
                schema["minimum"] = p.minimum
            if p.maximum is not None:
                schema["maximum"] = p.maximum
        return schema
    if t is ParamType.DATETIME:
        return {"type": "string", "format": "date-time"}
    if t is ParamType.LINEAR_UNIT:
        return {
            "type": "object",
            "description": "A length: a number and its unit.",
            "required": ["value", "unit"],
            "properties": {
                "value": {"type": "number"},
                "unit": {"type": "string", "enum": list(LINEAR_UNITS), "default": "meter"},
            },
        }
    if t is ParamType.GEOMETRY:
        return {
            "oneOf": [
                {"allOf": [{"format": "geojson-geometry"}, {"$ref": GEOMETRY_SCHEMA}]},
                LAYER_REFERENCE_SCHEMA,
            ]
        }
    if t is ParamType.FEATURE_COLLECTION:
        return {
            "oneOf": [
                {"allOf": [{"format": "geojson-feature-collection"}, {"$ref": FEATURE_COLLECTION_SCHEMA}]},
                LAYER_REFERENCE_SCHEMA,
            ]
        }
    if t is ParamType.BBOX:
        return {"allOf": [{"format": "ogc-bbox"}, {"$ref": BBOX_SCHEMA}]}
    if t is ParamType.SPATIAL_REFERENCE:
        return {"type": "string", "format": "uri", "description": "A CRS URI, e.g. " + EPSG_URI + "3857"}
    if t in (ParamType.FILE, ParamType.RASTER):
        options = [
            {"type": "string", "format": "byte", "contentEncoding": "base64", "contentMediaType": m}
            for m in _media_types(p)
        ]
        return options[0] if len(options) == 1 else {"oneOf": options}
    return {"type": "object"}


def param_schema(p: ParamSpec) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 flavour, valid per schema.yaml) of an input or output."""
    item = _item_schema(p)
    if not p.multi:
        schema = item
    else:
        schema = {"type": "array", "items": item}
        if p.max_items is not None:
            schema["maxItems"] = p.max_items
    if p.default is not None:
        schema = {**schema, "default": p.default}
    return schema


def _job_control_options(spec: ProcessSpec) -> list[str]:
    options = [f"{m.value}-execute" for m in (ExecutionMode.SYNC, ExecutionMode.ASYNC) if m in spec.modes]
    return [*options, "dismiss"]


def process_summary(spec: ProcessSpec, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": spec.id, "version": spec.version, "title": spec.title}
    if spec.description:
        doc["description"] = spec.description
    if spec.keywords:
        doc["keywords"] = list(spec.keywords)
    doc["jobControlOptions"] = _job_control_options(spec)
    doc["outputTransmission"] = ["value", "reference"]
    href = urls.process(spec.id)
    doc["links"] = [
        link(href, "self", JSON, "process description"),
        link(href + "?f=html", "alternate", HTML, "process description as HTML"),
    ]
    return doc


def _param_description(p: ParamSpec, *, is_input: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"title": p.title or p.name}
    if p.description:
        doc["description"] = p.description
    doc["schema"] = param_schema(p)
    if is_input:
        doc["minOccurs"] = 1 if p.required and p.default is None else 0
        doc["maxOccurs"] = 1
    return doc


def process_description(spec: ProcessSpec, urls: Urls) -> dict[str, Any]:
    doc = process_summary(spec, urls)
    doc["inputs"] = {p.name: _param_description(p, is_input=True) for p in spec.inputs}
    doc["outputs"] = {p.name: _param_description(p, is_input=False) for p in spec.outputs}
    href = urls.process(spec.id)
    doc["links"] = [
        *_self_links(href, title="process description"),
        link(href + "/execution", REL_EXECUTE, JSON, "execute the process"),
        link(urls.href("jobs", {"processID": spec.id}), REL_JOB_LIST, JSON, "jobs of this process"),
    ]
    return doc


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise errors.InvalidParameterValue(f"query parameter {name!r} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise errors.InvalidParameterValue(f"query parameter {name!r} must be {bound}")
    return value


def page_params(query: Mapping[str, str]) -> tuple[int, int]:
    """``limit`` (1..10000, default 10) and ``offset`` (>= 0) of a list request."""
    return (
        _int_param(query, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX),
        _int_param(query, "offset", 0, 0, None),
    )


def _query(query: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k != "f"}


def _paging_links(
    href: str, query: Mapping[str, str], *, limit: int, next_offset: int | None, prev_offset: int | None
) -> list[dict[str, str]]:
    out = []
    base = {**_query(query), "limit": str(limit)}
    if next_offset is not None:
        out.append(link(f"{href}?{urlencode({**base, 'offset': next_offset})}", "next", JSON, "next page"))
    if prev_offset is not None:
        out.append(link(f"{href}?{urlencode({**base, 'offset': prev_offset})}", "prev", JSON, "previous page"))
    return out


def process_list(specs: Sequence[ProcessSpec], urls: Urls, query: Mapping[str, str]) -> dict[str, Any]:
    limit, offset = page_params(query)
    page = specs[offset : offset + limit]
    href = urls.href("processes")
    return {
        "processes": [process_summary(s, urls) for s in page],
        "links": [
            *_self_links(href, _query(query), "the processes"),
            *_paging_links(
                href,
                query,
                limit=limit,
                next_offset=offset + limit if offset + limit < len(specs) else None,
                prev_offset=max(0, offset - limit) if offset > 0 else None,
            ),
        ],
    }


# --- execute request ------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """An execute request in internal terms, plus what the response must echo back."""

    request: ExecutionRequest
    prefer_async: bool


def preferred_mode(prefer: str) -> tuple[ExecutionMode | None, bool]:
    """The mode asked for in a ``Prefer`` header (RFC 7240) and whether respond-async was asked.

    ``respond-sync`` is not an RFC 7240 preference, but OWSLib sends it for synchronous calls.
    """
    names = {part.split(";")[0].split("=")[0].strip().lower() for part in (prefer or "").split(",")}
    if "respond-async" in names:
        return ExecutionMode.ASYNC, True
    if "respond-sync" in names:
        return ExecutionMode.SYNC, False
    return None, False


def trace_parent(header: str | None) -> str | None:
    """A valid W3C ``traceparent`` to carry into the worker; an invalid one is dropped (the
    spec's rule: the run then starts a trace of its own)."""
    return traceparent_normalize(header)


def crs_srid(crs: Any, where: str) -> int:
    """EPSG code of a CRS given as an OGC URI, URN, ``EPSG:n`` or integer."""
    if isinstance(crs, int) and not isinstance(crs, bool) and crs > 0:
        return crs
    text = str(crs or "").strip()
    lowered = text.lower()
    if lowered.endswith(("/crs84", ":crs84")) or lowered == "crs84":
        return 4326
    if lowered.endswith(("/crs84h", ":crs84h")):
        return 4979
    match = (
        re.fullmatch(r"https?://www\.opengis\.net/def/crs/epsg/[^/]*/(\d+)", lowered)
        or re.fullmatch(r"urn:ogc:def:crs:epsg:[^:]*:(\d+)", lowered)
        or re.fullmatch(r"epsg:(\d+)", lowered)
    )
    if match is None:
        raise errors.InvalidParameterValue(
            f"{where}: unsupported crs {text!r}; use {CRS84} or {EPSG_URI}<code>"
        )
    return int(match.group(1))


def srid_crs(srid: int) -> str:
    return CRS84 if srid == 4326 else f"{EPSG_URI}{srid}"


def _qualified(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and set(value) <= _QUALIFIED_KEYS


def _format_of(value: dict[str, Any]) -> tuple[str | None, str | None]:
    fmt: dict[str, Any] = value["format"] if isinstance(value.get("format"), dict) else {}
    media = value.get("mediaType") or fmt.get("mediaType") or value.get("type")
    encoding = value.get("encoding") or fmt.get("encoding")
    return (str(media) if media else None), (str(encoding) if encoding else None)


def _reference(p: ParamSpec, value: dict[str, Any]) -> dict[str, Any]:
    href = value.get("href")
    if not isinstance(href, str) or urlsplit(href).scheme not in ("http", "https"):
        raise errors.InvalidParameterValue(f"input {p.name!r}: href must be an http(s) URL")
    outbound_url_precheck(href, where=f"input {p.name!r}")
    if p.type not in _BY_REFERENCE:
        raise errors.InvalidParameterValue(
            f"input {p.name!r} ({p.type.value}) cannot be given by reference; give its value inline"
        )
    media, _ = _format_of(value)
    default = GEOJSON if p.type in (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY) else _media_types(p)[0]
    return {"href": href, "media_type": media or default}


def _crs_member(value: dict[str, Any], where: str) -> int | None:
    """srid from a GeoJSON (2008) ``crs`` member or a plain CRS string beside a value."""
    crs = value.get("crs")
    if crs is None:
        return None
    if isinstance(crs, dict):
        crs = (crs.get("properties") or {}).get("name")
    return crs_srid(crs, where)


def _geojson(p: ParamSpec, value: Any, outer: dict[str, Any] | None) -> Any:
    where = f"input {p.name!r}"
    if not isinstance(value, dict):
        return value  # the control plane says what is wrong with it
    srid = _crs_member(value, where) or (_crs_member(outer, where) if outer else None) or 4326
    doc = {k: v for k, v in value.items() if k != "crs"}
    if p.type is ParamType.GEOMETRY:
        if doc.get("type") == "Feature":
            doc = dict(doc.get("geometry") or {})
        return {**doc, "srid": srid}
    if doc.get("type") == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc]}
    elif doc.get("type") not in (None, "FeatureCollection"):
        doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": doc, "properties": {}}]}
    return {**doc, "srid": srid}


def _file_value(p: ParamSpec, value: Any, media: str | None, encoding: str | None) -> dict[str, Any]:
    where = f"input {p.name!r}"
    if not isinstance(value, str):
        raise errors.InvalidParameterValue(f"{where} must be a base64 string or a reference {{href}}")
    allowed = _media_types(p)
    if media and OCTETS not in allowed and media.split(";")[0].strip() not in {m.split(";")[0] for m in allowed}:
        raise errors.InvalidParameterValue(f"{where}: media type {media!r} is not one of " + ", ".join(allowed))
    encoding = (encoding or "base64").lower()
    if encoding == "base64":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise errors.InvalidParameterValue(f"{where} is not valid base64") from None
    return {"value": value, "media_type": media or allowed[0], "encoding": encoding}


def _linear_unit(p: ParamSpec, value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"value": value, "unit": "meter"}
    if isinstance(value, dict) and "unit" in value:
        unit = str(value["unit"]).strip().lower().replace(" ", "_")
        return {"value": value.get("value"), "unit": _UNIT_ALIASES.get(unit, unit)}
    return value


_LAYER_REF_KEYS = frozenset({"collectionId", "bbox", "bbox-crs", "filter", "filter-lang"})


def _layer_reference(p: ParamSpec, ref: Any) -> dict[str, Any]:
    """``{"layerReference": {"collectionId", "bbox", "bbox-crs", "filter", "filter-lang"}}``
    -> the internal layer reference (contracts)."""
    where = f"input {p.name!r}"
    if p.type not in (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY):
        raise errors.InvalidParameterValue(f"{where} ({p.type.value}) cannot be a layer reference")
    if not isinstance(ref, dict) or not isinstance(ref.get("collectionId"), str):
        raise errors.InvalidParameterValue(f"{where}: layerReference needs a collectionId (text)")
    unknown = sorted(set(ref) - _LAYER_REF_KEYS)
    if unknown:
        raise errors.InvalidParameterValue(
            f"{where}: unknown layerReference member {unknown[0]!r}; members are "
            + ", ".join(sorted(_LAYER_REF_KEYS))
        )
    out: dict[str, Any] = {"layer": ref["collectionId"]}
    bbox = ref.get("bbox")
    if bbox is not None:
        if not (isinstance(bbox, list) and len(bbox) in (4, 6) and all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in bbox
        )):
            raise errors.InvalidParameterValue(f"{where}: layerReference bbox must be 4 or 6 numbers")
        out["bbox"] = bbox
        out["bbox_srid"] = crs_srid(ref.get("bbox-crs") or CRS84, f"{where}: bbox-crs")
    flt = ref.get("filter")
    if flt is not None:
        if not isinstance(flt, str):
            raise errors.InvalidParameterValue(f"{where}: layerReference filter must be CQL2 text")
        lang = ref.get("filter-lang") or "cql2-text"
        if lang != "cql2-text":
            raise errors.InvalidParameterValue(f"{where}: filter-lang {lang!r} is not supported; use cql2-text")
        out["filter"] = flt
        out["filter_lang"] = "cql2-text"
    return out


def _own_layer_href(p: ParamSpec, href: str, root: str | None) -> dict[str, Any] | None:
    cid = collection_in_url(href, root)
    if cid is None:
        return None
    ref: dict[str, Any] = {"collectionId": cid}
    query = dict(parse_qsl(urlsplit(href).query))
    if query.get("bbox"):
        try:
            ref["bbox"] = [float(v) for v in query["bbox"].split(",")]
        except ValueError:
            raise errors.InvalidParameterValue(f"input {p.name!r}: the href's bbox must be numbers") from None
        if query.get("bbox-crs"):
            ref["bbox-crs"] = query["bbox-crs"]
    if query.get("filter"):
        ref["filter"] = query["filter"]
        if query.get("filter-lang"):
            ref["filter-lang"] = query["filter-lang"]
    return _layer_reference(p, ref)


def input_value(p: ParamSpec, value: Any, own_root: str | None = None) -> Any:
    """One wire value of input ``p`` (inline, qualified, bbox, GeoJSON, layer reference or
    link) -> internal. ``own_root``: this API's root URL, whose collections are layers."""
    if isinstance(value, dict) and "layerReference" in value:
        if set(value) != {"layerReference"}:
            raise errors.InvalidParameterValue(f"input {p.name!r}: layerReference stands alone")
        return _layer_reference(p, value["layerReference"])
    if isinstance(value, dict) and "href" in value and "value" not in value:
        if isinstance(value["href"], str) and p.type in (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY):
            layer = _own_layer_href(p, value["href"], own_root)
            if layer is not None:
                return layer
        return _reference(p, value)
    t = p.type
    outer = value if _qualified(value) else None
    media, encoding = _format_of(value) if outer else (None, None)
    inner = value["value"] if outer else value
    if t in (ParamType.FILE, ParamType.RASTER):
        return _file_value(p, inner, media, encoding)
    if t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION):
        return _geojson(p, inner, outer)
    if t is ParamType.BBOX:
        if isinstance(inner, dict) and "bbox" in inner:
            return {"bbox": inner["bbox"], "srid": crs_srid(inner.get("crs") or CRS84, f"input {p.name!r}")}
        return inner
    if t is ParamType.SPATIAL_REFERENCE:
        if isinstance(inner, dict):
            return inner
        return {"srid": crs_srid(inner, f"input {p.name!r}")}
    if t is ParamType.LINEAR_UNIT:
        return _linear_unit(p, inner)
    return inner


def own_upload(value: Any, uploads_href: str | None) -> dict[str, str] | None:
    """``{"href": "<this server's /uploads/{id}>"}`` -> the internal ``{"upload": id}``;
    None for any other value (other hrefs stay references to fetch)."""
    if not uploads_href or not isinstance(value, dict) or "value" in value:
        return None
    href = value.get("href")
    if not isinstance(href, str) or not href.startswith(uploads_href):
        return None
    item = urlsplit(href[len(uploads_href):]).path.strip("/")
    return {"upload": item} if item and "/" not in item else None


def _input(p: ParamSpec, value: Any, uploads_href: str | None, own_root: str | None) -> Any:
    if p.type in _BY_REFERENCE:
        upload = own_upload(value, uploads_href)
        if upload is not None:
            return upload
    return input_value(p, value, own_root)


def _inputs(
    spec: ProcessSpec, wire: Any, uploads_href: str | None = None, own_root: str | None = None
) -> dict[str, Any]:
    if wire is None:
        return {}
    if not isinstance(wire, dict):
        raise errors.InvalidRequest("'inputs' must be an object of input id -> value")
    out: dict[str, Any] = {}
    for name, value in wire.items():
        p = spec.input(name)
        if p is None:
            raise errors.UnknownParameter(
                f"unknown input {name!r} for process {spec.id!r}; inputs are: "
                + ", ".join(i.name for i in spec.inputs)
            )
        if p.multi:
            items = value if isinstance(value, list) else [value]
            out[name] = [_input(p, v, uploads_href, own_root) for v in items]
        elif isinstance(value, list) and p.type is not ParamType.OBJECT:
            if len(value) != 1:
                raise errors.InvalidParameterValue(f"input {name!r} takes one value, got {len(value)}")
            out[name] = _input(p, value[0], uploads_href, own_root)
        else:
            out[name] = _input(p, value, uploads_href, own_root)
    return out


def _outputs(spec: ProcessSpec, wire: Any) -> dict[str, OutputRequest]:
    if wire is None:
        return {}
    if not isinstance(wire, dict):
        raise errors.InvalidRequest("'outputs' must be an object of output id -> {transmissionMode, format}")
    out: dict[str, OutputRequest] = {}
    for name, options in wire.items():
        p = spec.output(name)
        if p is None:
            raise errors.InvalidParameterValue(
                f"unknown output {name!r}; outputs are: " + ", ".join(o.name for o in spec.outputs)
            )
        options = options if isinstance(options, dict) else {}
        mode = str(options.get("transmissionMode") or "value")
        mode = "reference" if mode == "ref" else mode
        if mode not in ("value", "reference"):
            raise errors.InvalidParameterValue(
                f"output {name!r}: transmissionMode must be 'value' or 'reference'"
            )
        media, _ = _format_of(options)
        if media and media.split(";")[0].strip() not in {m.split(";")[0] for m in output_media_types(p)}:
            raise errors.InvalidParameterValue(
                f"output {name!r}: media type {media!r} is not offered; use one of "
                + ", ".join(output_media_types(p))
            )
        out[name] = OutputRequest(
            transmission=mode, media_type=media, register_as=_register_as(name, options.get("registerAs"))
        )
    return out


def _register_as(name: str, wire: Any) -> dict[str, Any] | None:
    """``registerAs: {"collectionId", "title", "ttl"}`` of an output (the control plane checks
    the id, the rights and the output's type)."""
    if wire is None:
        return None
    where = f"output {name!r}: registerAs"
    if not isinstance(wire, dict) or not isinstance(wire.get("collectionId"), str):
        raise errors.InvalidParameterValue(f"{where} must be {{collectionId, title, ttl}} with a collectionId")
    unknown = sorted(set(wire) - {"collectionId", "title", "ttl"})
    if unknown:
        raise errors.InvalidParameterValue(f"{where}: unknown member {unknown[0]!r}")
    ttl = wire.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0 or ttl != int(ttl)):
        raise errors.InvalidParameterValue(f"{where}: ttl must be a positive whole number of seconds")
    return {
        "collection_id": wire["collectionId"],
        "title": wire.get("title") if wire.get("title") is not None else wire["collectionId"],
        "ttl_seconds": int(ttl) if ttl is not None else None,
    }


def _subscriber(wire: Any) -> Subscriber | None:
    if wire is None:
        return None
    if not isinstance(wire, dict):
        raise errors.InvalidRequest("'subscriber' must be an object {successUri, inProgressUri, failedUri}")
    uris: dict[str, str | None] = {}
    for key in ("successUri", "inProgressUri", "failedUri"):
        uri = wire.get(key)
        if uri is not None and (not isinstance(uri, str) or urlsplit(uri).scheme not in ("http", "https")):
            raise errors.InvalidParameterValue(f"subscriber {key} must be an http(s) URL")
        if uri is not None:
            outbound_url_precheck(uri, where=f"subscriber {key}")
        uris[key] = uri
    if not any(uris.values()):
        return None
    return Subscriber(
        success_uri=uris["successUri"], failed_uri=uris["failedUri"], in_progress_uri=uris["inProgressUri"]
    )


def output_media_types(p: ParamSpec) -> tuple[str, ...]:
    """Media types of an output's raw encoding (the first is what raw responses use)."""
    if p.type in (ParamType.FILE, ParamType.RASTER):
        return _media_types(p)
    return (_raw_media_type(p.type.value, p.multi),)


def execute_request(
    spec: ProcessSpec,
    body: Any,
    *,
    principal: Principal,
    prefer: str = "",
    request_bytes: int = 0,
    trace_header: str | None = None,
    urls: Urls | None = None,
) -> Submission:
    """An OGC execute body (``execute.yaml``) for ``spec`` -> the internal request (``urls``:
    this server's, so that an href to one of its uploads becomes the upload itself)."""
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the body must be a JSON object (an OGC execute request)")
    unknown = sorted(set(body) - _EXECUTE_KEYS)
    if unknown:
        raise errors.InvalidRequest(
            f"not an execute request: unknown member {unknown[0]!r}; expected inputs, outputs, "
            "response, subscriber"
        )
    response = body.get("response", "raw")
    if response not in ("raw", "document"):
        raise errors.InvalidParameterValue("'response' must be 'raw' or 'document'")
    mode, prefer_async = preferred_mode(prefer)
    request = ExecutionRequest(
        process_id=spec.id,
        inputs=_inputs(spec, body.get("inputs"), urls.href("uploads/") if urls else None, urls.root if urls else None),
        principal=principal,
        surface=Surface.OGC,
        mode=mode,
        outputs=_outputs(spec, body.get("outputs")),
        response=response,
        subscriber=_subscriber(body.get("subscriber")),
        options={
            # jsonb does not keep key order: a list keeps the process's output order.
            "ogc_outputs": [[o.name, o.type.value, o.multi, output_media_types(o)[0]] for o in spec.outputs],
        },
        trace_parent=trace_parent(trace_header),
        request_bytes=request_bytes,
    )
    return Submission(request=request, prefer_async=prefer_async)


# --- job status -----------------------------------------------------------------------------


def rfc3339(value: str | None) -> str | None:
    if not value:
        return None
    return value.replace("+00:00", "Z")


def ogc_status(result: ExecutionResult) -> str:
    return "dismissed" if result.dismissed else STATUS[result.status]


def _message(result: ExecutionResult) -> str | None:
    if result.error and ogc_status(result) == "failed":
        return str(result.error.get("message") or "Failed.")
    if result.dismissed:
        return "Dismissed."
    return result.messages[-1].text if result.messages else None


def status_info(result: ExecutionResult, urls: Urls) -> dict[str, Any]:
    """statusInfo.yaml of a run."""
    status = ogc_status(result)
    doc: dict[str, Any] = {
        "jobID": str(result.run_id),
        "type": "process",
        "processID": result.process_id,
        "status": status,
    }
    message = _message(result)
    if message:
        doc["message"] = message
    for key in ("created", "started", "finished", "updated"):
        stamp = rfc3339(getattr(result, key))
        if stamp:
            doc[key] = stamp
    doc["progress"] = max(0, min(100, int(result.progress)))
    href = urls.job(result.run_id)
    links = [
        *_self_links(href, title="job status"),
        link(href, "monitor", JSON, "job status"),
        link(urls.href("jobs"), "up", JSON, "the job list"),
    ]
    if status == "successful":
        links.append(link(urls.results(result.run_id), REL_RESULTS, results_media_type(result), "job results"))
        links += layer_links(result, urls)
    doc["links"] = links
    return doc


def published_layers(result: ExecutionResult) -> list[tuple[str, str]]:
    """(output, collection id) of the outputs a succeeded run published as layers (a run
    that could not publish one failed)."""
    if result.status is not RunStatus.SUCCEEDED or result.dismissed:
        return []
    outputs = result.request.get("outputs") or {}
    return [
        (name, str(req["register_as"]["collection_id"]))
        for name, req in outputs.items()
        if isinstance(req, dict) and isinstance(req.get("register_as"), dict)
    ]


def layer_links(result: ExecutionResult, urls: Urls) -> list[dict[str, str]]:
    return [
        link(urls.href(f"collections/{cid}"), REL_COLLECTION, JSON, f"output {name} as a collection")
        for name, cid in published_layers(result)
    ]


def job_filters(query: Mapping[str, str]) -> tuple[RunFilter, int, int]:
    """The ``/jobs`` query (type, processID, status, datetime, min/maxDuration, limit, offset)."""
    limit, offset = page_params(query)
    surfaces: tuple[Surface, ...] = ()
    types = _csv(query.get("type"))
    for t in types:
        if t != "process":
            raise errors.InvalidParameterValue(f"unknown job type {t!r}; the only type is 'process'")
    if types:
        surfaces = (Surface.OGC,)
    statuses, dismissed = _status_filter(_csv(query.get("status")))
    after, before = _datetime_filter(query.get("datetime"))
    return (
        RunFilter(
            process_ids=tuple(_csv(query.get("processID"))),
            statuses=statuses,
            surfaces=surfaces,
            created_after=after,
            created_before=before,
            min_duration=_duration(query, "minDuration"),
            max_duration=_duration(query, "maxDuration"),
            dismissed=dismissed,
        ),
        limit,
        offset,
    )


def _csv(raw: str | None) -> list[str]:
    return [v.strip() for v in (raw or "").split(",") if v.strip()]


_INTERNAL = {
    "accepted": (RunStatus.QUEUED, RunStatus.WAITING),
    "running": (RunStatus.RUNNING, RunStatus.CANCELLING),
    "successful": (RunStatus.SUCCEEDED,),
    "failed": (RunStatus.FAILED, RunStatus.TIMED_OUT),
}


def _status_filter(wanted: list[str]) -> tuple[tuple[RunStatus, ...], bool]:
    """OGC statuses -> (internal statuses, whether dismissed runs are wanted) for ``RunFilter``
    ("dismissed" is ``dismissed_at`` set, whatever the status, or ``cancelled``)."""
    for s in wanted:
        if s not in OGC_STATUSES:
            raise errors.InvalidParameterValue(f"unknown status {s!r}; use " + ", ".join(OGC_STATUSES))
    chosen = set(wanted) or {"running", "successful", "failed", "dismissed"}
    internal = tuple(st for s in OGC_STATUSES if s in chosen and s != "dismissed" for st in _INTERNAL[s])
    return internal, "dismissed" in chosen


def _parse_instant(text: str, *, end: bool) -> datetime:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.combine(datetime.fromisoformat(text).date(), time.min, UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise errors.InvalidParameterValue(f"datetime: {text!r} is not an RFC 3339 date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _datetime_filter(raw: str | None) -> tuple[datetime | None, datetime | None]:
    if not raw:
        return None, None
    if "/" not in raw:
        return _parse_instant(raw, end=False), _parse_instant(raw, end=True)
    start, _, stop = raw.partition("/")
    after = None if start in ("", "..") else _parse_instant(start, end=False)
    before = None if stop in ("", "..") else _parse_instant(stop, end=True)
    if after and before and after > before:
        raise errors.InvalidParameterValue("datetime: the interval ends before it starts")
    return after, before


def _duration(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(str(raw).split(",")[0])
    except ValueError:
        raise errors.InvalidParameterValue(f"{name} must be a number of seconds") from None
    if value < 0:
        raise errors.InvalidParameterValue(f"{name} must not be negative")
    return value


def job_list(page: RunPage, urls: Urls, query: Mapping[str, str]) -> dict[str, Any]:
    limit, _ = page_params(query)
    href = urls.href("jobs")
    return {
        "jobs": [status_info(r, urls) for r in page.results],
        "links": [
            *_self_links(href, _query(query), "the jobs"),
            *_paging_links(
                href,
                query,
                limit=limit,
                next_offset=int(page.next_cursor) if page.next_cursor is not None else None,
                prev_offset=page.prev_offset,
            ),
        ],
    }


# --- results ---------------------------------------------------------------------------------


ArtifactHref = Callable[[str], str]


@dataclass
class Wire:
    """An HTTP answer in OGC terms: a JSON document (``data``) or raw ``body`` bytes."""

    status: int
    data: Any = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Out:
    name: str
    type: str | None
    multi: bool
    media_type: str | None


def _raw_media_type(ptype: str | None, multi: bool) -> str:
    if multi:
        return JSON
    if ptype in (ParamType.STRING.value, ParamType.DATETIME.value, ParamType.SPATIAL_REFERENCE.value):
        return TEXT
    if ptype in (ParamType.GEOMETRY.value, ParamType.FEATURE_COLLECTION.value):
        return GEOJSON
    if ptype in (ParamType.FILE.value, ParamType.RASTER.value):
        return OCTETS
    return JSON


def _declared_outputs(result: ExecutionResult) -> list[_Out]:
    rows = (result.request.get("options") or {}).get("ogc_outputs") or []
    return [_Out(name=r[0], type=r[1], multi=bool(r[2]), media_type=r[3]) for r in rows]


def _requested(result: ExecutionResult) -> dict[str, dict[str, Any]]:
    return dict(result.request.get("outputs") or {})


def _selected(result: ExecutionResult, present: Sequence[str]) -> list[_Out]:
    """The outputs the client asked for (all defined ones when it named none), in order."""
    declared = _declared_outputs(result)
    requested = _requested(result)
    if declared:
        return [o for o in declared if not requested or o.name in requested]
    names = list(requested) or list(present)
    return [_Out(name=n, type=None, multi=False, media_type=None) for n in names]


def results_media_type(result: ExecutionResult) -> str:
    """What ``GET /jobs/{id}/results`` answers for this run (the results link ``type``)."""
    if result.request.get("response") == "document":
        return JSON
    selected = _selected(result, list(result.output_links))
    if len(selected) != 1:
        return "multipart/related"
    wanted = _requested(result).get(selected[0].name) or {}
    return wanted.get("media_type") or selected[0].media_type or JSON


def _infer_type(value: Any) -> str:
    if isinstance(value, str):
        return ParamType.STRING.value
    if isinstance(value, dict):
        if "bbox" in value and "srid" in value:
            return ParamType.BBOX.value
        if value.get("type") == "FeatureCollection":
            return ParamType.FEATURE_COLLECTION.value
        if "srid" in value and "type" in value:
            return ParamType.GEOMETRY.value
        if "href" in value or "artifact" in value or ("value" in value and "media_type" in value):
            return ParamType.FILE.value
    return ParamType.OBJECT.value


def _geojson_out(value: dict[str, Any]) -> dict[str, Any]:
    srid = value.get("srid", 4326)
    doc = {k: v for k, v in value.items() if k not in ("srid", "fields")}
    if srid != 4326:
        doc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
    return doc


def _bbox_out(value: dict[str, Any]) -> dict[str, Any]:
    return {"bbox": value.get("bbox"), "crs": srid_crs(int(value.get("srid", 4326)))}


def _file_link(value: dict[str, Any], artifact_href: ArtifactHref) -> dict[str, str] | None:
    if "artifact" in value:
        return {"href": artifact_href(str(value["artifact"])), "type": value.get("media_type") or OCTETS}
    if "href" in value:
        return {"href": str(value["href"]), "type": value.get("media_type") or OCTETS}
    return None


def output_value(ptype: str | None, value: Any, artifact_href: ArtifactHref) -> Any:
    """One internal output value -> its results-document form (inline, qualified or link)."""
    t = ptype or _infer_type(value)
    if value is None or t in (ParamType.STRING, ParamType.INTEGER, ParamType.NUMBER, ParamType.BOOLEAN,
                              ParamType.DATETIME):
        return value
    if t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION) and isinstance(value, dict):
        return {"value": _geojson_out(value), "mediaType": GEOJSON}
    if t == ParamType.BBOX and isinstance(value, dict):
        box = _bbox_out(value)
        # bbox.yaml only admits the CRS84 crs URIs inline; other systems go qualified.
        return box if box["crs"] == CRS84 else {"value": box, "mediaType": JSON}
    if t == ParamType.SPATIAL_REFERENCE and isinstance(value, dict):
        return srid_crs(int(value["srid"])) if "srid" in value else value.get("wkt")
    if t in (ParamType.FILE, ParamType.RASTER) and isinstance(value, dict):
        ref = _file_link(value, artifact_href)
        if ref is not None:
            return ref
        return {"value": value.get("value"), "mediaType": value.get("media_type") or OCTETS,
                "encoding": value.get("encoding") or "base64"}
    if isinstance(value, dict):  # object, linear unit: objects travel as qualified values
        return {"value": value, "mediaType": JSON}
    return value


def _document_value(out: _Out, value: Any, artifact_href: ArtifactHref) -> Any:
    if out.multi and isinstance(value, list):
        return [output_value(out.type, v, artifact_href) for v in value]
    return output_value(out.type, value, artifact_href)


@dataclass(frozen=True)
class _Part:
    name: str
    content_type: str
    body: bytes | None  # None: by reference
    href: str | None = None


def _raw_item(ptype: str | None, value: Any) -> Any:
    """The JSON form of one value inside a raw JSON body (objects unwrapped, not qualified)."""
    t = ptype or _infer_type(value)
    if t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION) and isinstance(value, dict):
        return _geojson_out(value)
    if t == ParamType.BBOX and isinstance(value, dict):
        return _bbox_out(value)
    if t == ParamType.SPATIAL_REFERENCE and isinstance(value, dict) and "srid" in value:
        return srid_crs(int(value["srid"]))
    return value


def _raw_part(out: _Out, value: Any, artifact_href: ArtifactHref) -> _Part:
    t = out.type or _infer_type(value)
    if out.multi and isinstance(value, list):
        body = orjson.dumps([_raw_item(t, v) for v in value])
        return _Part(out.name, JSON, body)
    if t in (ParamType.FILE, ParamType.RASTER) and isinstance(value, dict):
        ref = _file_link(value, artifact_href)
        if ref is not None:
            return _Part(out.name, ref["type"], None, ref["href"])
        data = str(value.get("value") or "")
        raw = base64.b64decode(data) if (value.get("encoding") or "base64") == "base64" else data.encode()
        return _Part(out.name, value.get("media_type") or OCTETS, raw)
    if t in (ParamType.STRING, ParamType.DATETIME) and isinstance(value, str):
        return _Part(out.name, TEXT, value.encode())
    item = _raw_item(t, value)
    if t == ParamType.SPATIAL_REFERENCE and isinstance(item, str):
        return _Part(out.name, TEXT, item.encode())
    media = GEOJSON if t in (ParamType.GEOMETRY, ParamType.FEATURE_COLLECTION) else JSON
    return _Part(out.name, media, orjson.dumps(item))


def _multipart(parts: Sequence[_Part]) -> tuple[bytes, str]:
    boundary = f"honua-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for part in parts:
        head = [f"--{boundary}", f"Content-ID: <{part.name}>", f"Content-Type: {part.content_type}"]
        if part.href is not None:
            head.append(f"Content-Location: {part.href}")
        chunks.append(("\r\n".join(head) + "\r\n\r\n").encode())
        chunks.append((part.body or b"") + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    root = parts[0].content_type if parts else JSON
    return b"".join(chunks), f'multipart/related; boundary="{boundary}"; type="{root.split(";")[0]}"'


def error_from_result(result: ExecutionResult, urls: Urls | None = None) -> errors.HonuaError:
    """The exception that tells a client why a finished run has no results."""
    instance = urls.job(result.run_id) if urls else ""
    if result.dismissed or result.status is RunStatus.CANCELLED:
        return errors.ResultNotAvailable(f"job {result.run_id} was dismissed; it has no results", instance=instance)
    error = result.error or {}
    code = str(error.get("code") or "execution-failed")
    cls = _ERRORS.get(code, errors.ExecutionFailed)
    exc = cls(str(error.get("message") or cls.title), details=list(error.get("details") or []), instance=instance)
    exc.code = code
    return exc


def _all_errors(cls: type[errors.HonuaError]) -> list[type[errors.HonuaError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _all_errors(sub))]


_ERRORS = {cls.code: cls for cls in _all_errors(errors.HonuaError)}


def results_response(
    result: ExecutionResult, values: Mapping[str, Any], urls: Urls, artifact_href: ArtifactHref
) -> Wire:
    """The results of a finished run as the client asked (CHECKLIST §6.3 table); outputs
    published as layers are linked from the Link header (the results document has no links)."""
    wire = _results_response(result, values, urls, artifact_href)
    wire.links.extend(layer_links(result, urls))
    return wire


def _results_response(
    result: ExecutionResult, values: Mapping[str, Any], urls: Urls, artifact_href: ArtifactHref
) -> Wire:
    if not result.is_finished:
        raise errors.ResultNotReady(f"job {result.run_id} is {ogc_status(result)}; results are not ready")
    if result.status is not RunStatus.SUCCEEDED or result.dismissed:
        raise error_from_result(result, urls)
    requested = _requested(result)
    references = {
        name: link_
        for name, link_ in result.output_links.items()
        if link_.get("transmission") == "reference" or name not in values
    }
    selected = _selected(result, [*values, *references])
    if result.request.get("response") == "document":
        doc: dict[str, Any] = {}
        for out in selected:
            if out.name in references:
                ref = references[out.name]
                doc[out.name] = {"href": artifact_href(ref["artifact"]), "type": ref.get("media_type") or JSON}
            elif out.name in values and values[out.name] is not None:
                doc[out.name] = _document_value(out, values[out.name], artifact_href)
        return Wire(status=200, data=doc)
    parts: list[_Part] = []
    for out in selected:
        if out.name in references:
            ref = references[out.name]
            parts.append(_Part(out.name, ref.get("media_type") or JSON, None, artifact_href(ref["artifact"])))
        elif out.name in values and values[out.name] is not None:
            parts.append(_raw_part(out, values[out.name], artifact_href))
    if parts and all(p.body is None for p in parts):
        return Wire(
            status=204,
            links=[link(p.href or "", REL_RESULTS, p.content_type, p.name) for p in parts],
        )
    if len(selected) == 1 or (not requested and not _declared_outputs(result) and len(parts) == 1):
        if not parts:
            return Wire(status=204)
        return Wire(status=200, body=parts[0].body, content_type=parts[0].content_type)
    body, content_type = _multipart(parts)
    return Wire(status=200, body=body, content_type=content_type)


def results_document(result: ExecutionResult, values: Mapping[str, Any], artifact_href: ArtifactHref) -> dict[str, Any]:
    """The results document of a succeeded run, whatever ``response`` it asked for (callbacks)."""
    doc: dict[str, Any] = {}
    outputs = _selected(result, [*values, *result.output_links])
    for out in outputs:
        ref = result.output_links.get(out.name)
        if ref is not None and (ref.get("transmission") == "reference" or out.name not in values):
            doc[out.name] = {"href": artifact_href(ref["artifact"]), "type": ref.get("media_type") or JSON}
        elif values.get(out.name) is not None:
            doc[out.name] = _document_value(out, values[out.name], artifact_href)
    return doc


def needs_stored_outputs(result: ExecutionResult) -> bool:
    """A finished sync run answered with live outputs carries no artifact links; outputs asked
    by reference then have to be read back from the ledger."""
    return (
        result.status is RunStatus.SUCCEEDED
        and not result.output_links
        and any(o.get("transmission") == "reference" for o in _requested(result).values())
    )


def execute_response(
    result: ExecutionResult,
    values: Mapping[str, Any],
    submission: Submission,
    urls: Urls,
    artifact_href: ArtifactHref,
) -> Wire:
    """201 + Location for a job (async, or a sync run past its deadline); else the results."""
    job_href = urls.job(result.run_id)
    # The trace the run was recorded under: the client's, or the one started for it.
    trace = {"traceparent": result.trace_parent} if result.trace_parent else {}
    if not result.is_finished:
        headers = {"Location": job_href, **trace}
        if submission.prefer_async and result.mode is ExecutionMode.ASYNC:
            headers["Preference-Applied"] = "respond-async"
        return Wire(status=201, data=status_info(result, urls), headers=headers)
    wire = results_response(result, values, urls, artifact_href)
    wire.links.insert(0, link(job_href, "monitor", JSON, "the job"))
    wire.headers.update(trace)
    return wire


# --- exceptions ------------------------------------------------------------------------------


def exception_type(code: str) -> str:
    return EXCEPTION_TYPE + code


def exception_document(
    *, code: str, title: str, status: int, detail: str, instance: str, details: Sequence[str] = ()
) -> dict[str, Any]:
    """The OGC exception body (RFC 7807 shape, ``exception.yaml``)."""
    doc: dict[str, Any] = {
        "type": exception_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if details:
        doc["details"] = list(details)
    return doc
