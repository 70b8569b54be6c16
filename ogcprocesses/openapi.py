"""The OpenAPI 3.0 definition of the OGC surface, generated from the operation table below
and the process catalog (one execute operation per process, its inputs typed by
``translate.param_schema``). Component schemas follow the OGC API - Processes 1.0 schemas;
overlapping ``oneOf`` branches of the originals are ``anyOf`` here (ogcapi-processes#350).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.contracts import ProcessSpec
from ogcprocesses import translate

_REF_MAP = {
    translate.BBOX_SCHEMA: "#/components/schemas/bbox",
    translate.GEOMETRY_SCHEMA: "#/components/schemas/geometryGeoJSON",
    translate.FEATURE_COLLECTION_SCHEMA: "#/components/schemas/featureCollectionGeoJSON",
}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _s(name: str) -> dict[str, str]:
    return _ref("schemas", name)


_LINKS = {"type": "array", "items": _s("link")}

SCHEMAS: dict[str, Any] = {
    "exception": {
        "title": "Exception Schema",
        "description": "JSON schema for exceptions based on RFC 7807",
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
        "additionalProperties": True,
    },
    "link": {
        "type": "object",
        "required": ["href"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "hreflang": {"type": "string"},
            "title": {"type": "string"},
        },
    },
    "landingPage": {
        "type": "object",
        "required": ["links"],
        "properties": {"title": {"type": "string"}, "description": {"type": "string"}, "links": _LINKS},
    },
    "confClasses": {
        "type": "object",
        "required": ["conformsTo"],
        "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
    },
    "metadata": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "role": {"type": "string"}, "href": {"type": "string"}},
    },
    "descriptionType": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "keywords": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "array", "items": _s("metadata")},
        },
    },
    "jobControlOptions": {"type": "string", "enum": ["sync-execute", "async-execute", "dismiss"]},
    "transmissionMode": {"type": "string", "enum": ["value", "reference"], "default": "value"},
    "processSummary": {
        "allOf": [
            _s("descriptionType"),
            {
                "type": "object",
                "required": ["id", "version"],
                "properties": {
                    "id": {"type": "string"},
                    "version": {"type": "string"},
                    "jobControlOptions": {"type": "array", "items": _s("jobControlOptions")},
                    "outputTransmission": {"type": "array", "items": _s("transmissionMode")},
                    "links": _LINKS,
                },
            },
        ]
    },
    "processList": {
        "type": "object",
        "required": ["processes", "links"],
        "properties": {"processes": {"type": "array", "items": _s("processSummary")}, "links": _LINKS},
    },
    "schema": {
        "type": "object",
        "description": "A JSON Schema (OpenAPI 3.0 schema object) describing a value.",
        "additionalProperties": True,
    },
    "inputDescription": {
        "allOf": [
            _s("descriptionType"),
            {
                "type": "object",
                "required": ["schema"],
                "properties": {
                    "minOccurs": {"type": "integer", "default": 1},
                    "maxOccurs": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["unbounded"]}]},
                    "schema": _s("schema"),
                },
            },
        ]
    },
    "outputDescription": {
        "allOf": [
            _s("descriptionType"),
            {"type": "object", "required": ["schema"], "properties": {"schema": _s("schema")}},
        ]
    },
    "process": {
        "allOf": [
            _s("processSummary"),
            {
                "type": "object",
                "properties": {
                    "inputs": {"type": "object", "additionalProperties": _s("inputDescription")},
                    "outputs": {"type": "object", "additionalProperties": _s("outputDescription")},
                },
            },
        ]
    },
    "bbox": {
        "type": "object",
        "required": ["bbox"],
        "properties": {
            "bbox": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            "crs": {"type": "string", "format": "uri", "default": translate.CRS84},
        },
    },
    "geometryGeoJSON": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {
                "type": "string",
                "enum": [
                    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                    "GeometryCollection",
                ],
            },
            "coordinates": {"type": "array", "items": {}},
            "geometries": {"type": "array", "items": {"type": "object"}},
        },
    },
    "featureCollectionGeoJSON": {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": _s("featureGeoJSON")},
        },
    },
    "format": {
        "type": "object",
        "properties": {
            "mediaType": {"type": "string"},
            "encoding": {"type": "string"},
            "schema": {"anyOf": [{"type": "string", "format": "url"}, {"type": "object"}]},
        },
    },
    "inputValueNoObject": {
        "anyOf": [
            {"type": "string"},
            {"type": "number"},
            {"type": "integer"},
            {"type": "boolean"},
            {"type": "array", "items": {}},
            {"type": "string", "format": "byte"},
            _s("bbox"),
        ]
    },
    "inputValue": {"anyOf": [_s("inputValueNoObject"), {"type": "object"}]},
    "qualifiedInputValue": {
        "allOf": [
            _s("format"),
            {"type": "object", "required": ["value"], "properties": {"value": _s("inputValue")}},
        ]
    },
    "inlineOrRefData": {"anyOf": [_s("inputValueNoObject"), _s("qualifiedInputValue"), _s("link")]},
    "output": {
        "type": "object",
        "properties": {"format": _s("format"), "transmissionMode": _s("transmissionMode")},
    },
    "subscriber": {
        "type": "object",
        "description": "Callback URIs for this job (conformance class 'callback').",
        "properties": {
            "successUri": {"type": "string", "format": "uri"},
            "inProgressUri": {"type": "string", "format": "uri"},
            "failedUri": {"type": "string", "format": "uri"},
        },
    },
    "execute": {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [_s("inlineOrRefData"), {"type": "array", "items": _s("inlineOrRefData")}]
                },
            },
            "outputs": {"type": "object", "additionalProperties": _s("output")},
            "response": {"type": "string", "enum": ["raw", "document"], "default": "raw"},
            "subscriber": _s("subscriber"),
        },
    },
    "statusCode": {"type": "string", "enum": list(translate.OGC_STATUSES)},
    "statusInfo": {
        "type": "object",
        "required": ["jobID", "status", "type"],
        "properties": {
            "processID": {"type": "string"},
            "type": {"type": "string", "enum": ["process"]},
            "jobID": {"type": "string"},
            "status": _s("statusCode"),
            "message": {"type": "string"},
            "created": {"type": "string", "format": "date-time"},
            "started": {"type": "string", "format": "date-time"},
            "finished": {"type": "string", "format": "date-time"},
            "updated": {"type": "string", "format": "date-time"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "links": _LINKS,
        },
    },
    "jobList": {
        "type": "object",
        "required": ["jobs", "links"],
        "properties": {"jobs": {"type": "array", "items": _s("statusInfo")}, "links": _LINKS},
    },
    "results": {"type": "object", "additionalProperties": _s("inlineOrRefData")},
    # OGC API - Features - Part 1: Core (the layer catalog) and uploads
    "extent": {
        "type": "object",
        "properties": {
            "spatial": {
                "type": "object",
                "properties": {
                    "bbox": {"type": "array", "minItems": 1,
                             "items": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
                    "crs": {"type": "string", "enum": [translate.CRS84], "default": translate.CRS84},
                },
            },
        },
    },
    "collection": {
        "type": "object",
        "required": ["id", "links"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "links": _LINKS,
            "extent": _s("extent"),
            "itemType": {"type": "string", "default": "feature"},
            "crs": {"type": "array", "items": {"type": "string"}, "default": [translate.CRS84]},
        },
    },
    "collections": {
        "type": "object",
        "required": ["links", "collections"],
        "properties": {"links": _LINKS, "collections": {"type": "array", "items": _s("collection")}},
    },
    "featureGeoJSON": {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {"allOf": [_s("geometryGeoJSON")], "nullable": True},
            "properties": {"type": "object", "nullable": True},
            "id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "links": _LINKS,
        },
    },
    "featureItems": {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": _s("featureGeoJSON")},
            "links": _LINKS,
            "timeStamp": {"type": "string", "format": "date-time"},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
        },
    },
    "upload": {
        "type": "object",
        "required": ["id", "name", "size", "mediaType", "links"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "mediaType": {"type": "string"},
            "description": {"type": "string"},
            "expires": {"type": "string", "format": "date-time"},
            "links": _LINKS,
        },
    },
    "ingest": {
        "type": "object",
        "required": ["id", "upload"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "upload": {"type": "string", "description": "An upload id, or this server's /uploads/{uploadId} URL."},
            "storage": {"type": "string", "enum": ["hosted", "file"], "default": "hosted"},
            "srid": {"type": "integer", "minimum": 1},
            "sublayer": {"type": "string"},
        },
        "additionalProperties": False,
    },
}

_HTML = {"text/html": {"schema": {"type": "string"}}}


def _json(schema: str, html: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _s(schema)}}
    return {**content, **_HTML} if html else content


RESPONSES: dict[str, Any] = {
    "LandingPage": {"description": "The landing page: links to the API definition, conformance, processes and jobs.",
                    "content": _json("landingPage", html=True)},
    "ConformanceDeclaration": {"description": "The conformance classes this server implements.",
                               "content": _json("confClasses", html=True)},
    "ProcessList": {"description": "The processes the caller may run.", "content": _json("processList", html=True)},
    "ProcessDescription": {"description": "A process description.", "content": _json("process", html=True)},
    "ExecuteSync": {
        "description": "Results of a synchronous execution: one raw output in its own media type, "
        "several as multipart/related (one part per output, Content-ID = output id), or the "
        "results document (response=document).",
        "headers": {"Link": {"schema": {"type": "string"}, "description": "<job URL>; rel=monitor"}},
        "content": {
            "application/json": {"schema": _s("results")},
            "multipart/related": {"schema": {"type": "string", "format": "binary"}},
            "*/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "ExecuteSyncRawRef": {
        "description": "response=raw with every output by reference: no body, one Link header per output.",
        "headers": {"Link": {"schema": {"type": "string"}, "description": "One link per output, and rel=monitor."}},
    },
    "ExecuteAsync": {
        "description": "A job was created (asynchronous execution, or a synchronous run that "
        "outlived the inline deadline).",
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "URL of the job status."},
            "Preference-Applied": {"schema": {"type": "string"}, "description": "respond-async when honoured."},
        },
        "content": _json("statusInfo"),
    },
    "JobList": {"description": "The caller's jobs, newest first.", "content": _json("jobList", html=True)},
    "Status": {"description": "The status of a job.", "content": _json("statusInfo", html=True)},
    "Results": {
        "description": "The results of a job: the same forms as a synchronous execution.",
        "content": {
            "application/json": {"schema": _s("results")},
            "multipart/related": {"schema": {"type": "string", "format": "binary"}},
            "*/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "ResultsRawRef": {"description": "response=raw with every output by reference: one Link header per output.",
                      "headers": {"Link": {"schema": {"type": "string"}}}},
    "InvalidParameter": {"description": "A parameter, input or body is invalid (exception types "
                         "invalid-request, invalid-parameter-value, missing-parameter, unknown-parameter, "
                         "invalid-geometry, mode-not-supported).", "content": _json("exception")},
    "NotFound": {"description": "No such process (no-such-process), job (no-such-job), or the results "
                 "are not ready (result-not-ready) or gone (result-not-available).",
                 "content": _json("exception")},
    "NotAllowed": {"description": "The method is not allowed at this path.", "content": _json("exception")},
    "Conflict": {"description": "The job is not in a state that allows this, or the collection id is taken.", "content": _json("exception")},
    "PayloadTooLarge": {"description": "The request or its inputs exceed the limits (payload-too-large, "
                        "input-limit-exceeded).", "content": _json("exception")},
    "UnsupportedMediaType": {"description": "The body is not JSON.", "content": _json("exception")},
    "TooManyRequests": {
        "description": "The tenant's quota is exhausted (quota-exceeded).",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
        "content": _json("exception"),
    },
    "Collections": {"description": "The caller's layers as feature collections.", "content": _json("collections")},
    "Collection": {"description": "A feature collection (a layer).", "content": _json("collection")},
    "CollectionCreated": {
        "description": "The uploaded file was ingested as a new collection.",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "URL of the new collection."}},
        "content": _json("collection"),
    },
    "Features": {
        "description": "A page of features (GeoJSON, CRS84) with next/prev links.",
        "content": {translate.GEOJSON: {"schema": _s("featureItems")}},
    },
    "Feature": {"description": "One feature (GeoJSON, CRS84).",
                "content": {translate.GEOJSON: {"schema": _s("featureGeoJSON")}}},
    "Upload": {"description": "An uploaded file.", "content": _json("upload")},
    "UploadCreated": {
        "description": "The file was stored (its type told by its content).",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "URL of the upload."}},
        "content": _json("upload"),
    },
    "Deleted": {"description": "Deleted."},
    "Unauthorized": {"description": "Authentication is required.", "content": _json("exception")},
    "Forbidden": {"description": "The caller may not do this.", "content": _json("exception")},
    "ServerError": {"description": "A server error occurred, or the job failed (its exception type).",
                    "content": _json("exception")},
    "ServiceUnavailable": {"description": "No execution tier can serve the request (no-tier-available).",
                           "content": _json("exception")},
}


def _array_param(name: str, items: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name, "in": "query", "required": False, "description": description,
        "style": "form", "explode": False, "schema": {"type": "array", "items": items},
    }


PARAMETERS: dict[str, Any] = {
    "f": {"name": "f", "in": "query", "required": False, "description": "Output format (overrides Accept).",
          "schema": {"type": "string", "enum": ["json", "html"]}},
    "limit": {"name": "limit", "in": "query", "required": False, "description": "Items per page.",
              "schema": {"type": "integer", "minimum": 1, "maximum": translate.LIMIT_MAX,
                         "default": translate.LIMIT_DEFAULT}},
    "offset": {"name": "offset", "in": "query", "required": False,
               "description": "Items to skip (paging; next/prev links carry it).",
               "schema": {"type": "integer", "minimum": 0, "default": 0}},
    "processIdPathParam": {"name": "processID", "in": "path", "required": True, "schema": {"type": "string"}},
    "jobId": {"name": "jobId", "in": "path", "required": True, "description": "local identifier of a job",
              "schema": {"type": "string"}},
    "type": _array_param("type", {"type": "string", "enum": ["process"]},
                         "process: only jobs created through this API."),
    "processIdQueryParam": _array_param("processID", {"type": "string"}, "Jobs of these processes."),
    "status": _array_param("status", _s("statusCode"),
                           "Jobs in these statuses (default: all but accepted)."),
    "datetime": {"name": "datetime", "in": "query", "required": False,
                 "description": "Creation instant or interval (a/b, ../b, a/..).", "schema": {"type": "string"}},
    "minDuration": {"name": "minDuration", "in": "query", "required": False,
                    "description": "Minimum run time in seconds.", "schema": {"type": "number", "minimum": 0}},
    "maxDuration": {"name": "maxDuration", "in": "query", "required": False,
                    "description": "Maximum run time in seconds.", "schema": {"type": "number", "minimum": 0}},
    "collectionId": {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"}},
    "featureId": {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
    "uploadId": {"name": "uploadId", "in": "path", "required": True, "schema": {"type": "string"}},
    "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
             "description": "minx,miny,maxx,maxy (or with heights, 6 numbers) in bbox-crs (default CRS84).",
             "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
    "bbox-crs": {"name": "bbox-crs", "in": "query", "required": False,
                 "description": "The CRS of bbox (Part 2): CRS84 (default) or an EPSG URI.",
                 "schema": {"type": "string", "format": "uri"}},
    "featureDatetime": {"name": "datetime", "in": "query", "required": False,
                        "description": "An instant or interval; layers carry no time, so every feature matches.",
                        "schema": {"type": "string"}},
    "filter": {"name": "filter", "in": "query", "required": False,
               "description": "A CQL2 filter (the documented subset).", "schema": {"type": "string"}},
    "filter-lang": {"name": "filter-lang", "in": "query", "required": False,
                    "schema": {"type": "string", "enum": ["cql2-text"], "default": "cql2-text"}},
    "filename": {"name": "filename", "in": "query", "required": False,
                 "description": "The file's name (else Content-Disposition's).", "schema": {"type": "string"}},
    "Prefer": {"name": "Prefer", "in": "header", "required": False,
               "description": "respond-async asks for a job (RFC 7240).", "schema": {"type": "string"}},
}


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    operation_id: str
    summary: str
    tags: tuple[str, ...]
    parameters: tuple[str, ...]
    responses: dict[str, str]


_ERRORS = {"400": "InvalidParameter", "500": "ServerError"}
_NOT_FOUND = {"404": "NotFound"}

OPERATIONS: tuple[Operation, ...] = (
    Operation("/", "get", "getLandingPage", "Landing page", ("Capabilities",), ("f",),
              {"200": "LandingPage", **_ERRORS}),
    Operation("/conformance", "get", "getConformanceClasses", "Conformance declaration", ("Capabilities",),
              ("f",), {"200": "ConformanceDeclaration", **_ERRORS}),
    Operation("/api", "get", "getAPI", "This API definition (OpenAPI 3.0)", ("Capabilities",), ("f",),
              {"200": "APIDefinition", **_ERRORS}),
    Operation("/processes", "get", "getProcesses", "The processes", ("Processes",), ("f", "limit", "offset"),
              {"200": "ProcessList", **_ERRORS}),
    Operation("/processes/{processID}", "get", "getProcessDescription", "A process description",
              ("Processes",), ("processIdPathParam", "f"),
              {"200": "ProcessDescription", **_NOT_FOUND, **_ERRORS}),
    Operation("/processes/{processID}/execution", "post", "execute", "Execute a process", ("Processes",),
              ("processIdPathParam", "Prefer"),
              {"200": "ExecuteSync", "201": "ExecuteAsync", "204": "ExecuteSyncRawRef", "400": "InvalidParameter",
               "401": "Unauthorized", "403": "Forbidden", "404": "NotFound", "413": "PayloadTooLarge",
               "415": "UnsupportedMediaType", "429": "TooManyRequests", "500": "ServerError",
               "503": "ServiceUnavailable"}),
    Operation("/jobs", "get", "getJobs", "The caller's jobs", ("Jobs",),
              ("type", "processIdQueryParam", "status", "datetime", "minDuration", "maxDuration", "limit",
               "offset", "f"),
              {"200": "JobList", **_ERRORS}),
    Operation("/jobs/{jobId}", "get", "getStatus", "The status of a job", ("Jobs",), ("jobId", "f"),
              {"200": "Status", **_NOT_FOUND, **_ERRORS}),
    Operation("/jobs/{jobId}", "delete", "dismiss", "Cancel a job and remove its results", ("Jobs",),
              ("jobId",), {"200": "Status", **_NOT_FOUND, "409": "Conflict", **_ERRORS}),
    Operation("/jobs/{jobId}/results", "get", "getResult", "The results of a job", ("Jobs",), ("jobId",),
              {"200": "Results", "204": "ResultsRawRef", **_NOT_FOUND, **_ERRORS, "503": "ServiceUnavailable"}),
    Operation("/collections", "get", "getCollections", "The feature collections (layers)", ("Data",), ("f",),
              {"200": "Collections", **_ERRORS}),
    Operation("/collections", "post", "createCollection", "Ingest an uploaded file as a new collection",
              ("Data",), (), {"201": "CollectionCreated", "400": "InvalidParameter", "401": "Unauthorized",
                              "403": "Forbidden", "404": "NotFound", "409": "Conflict",
                              "413": "PayloadTooLarge", "500": "ServerError"}),
    Operation("/collections/{collectionId}", "get", "describeCollection", "A feature collection", ("Data",),
              ("collectionId", "f"), {"200": "Collection", **_NOT_FOUND, **_ERRORS}),
    Operation("/collections/{collectionId}/items", "get", "getFeatures", "Features of a collection",
              ("Data",), ("collectionId", "bbox", "bbox-crs", "featureDatetime", "limit", "offset", "filter",
                          "filter-lang", "f"),
              {"200": "Features", **_NOT_FOUND, **_ERRORS}),
    Operation("/collections/{collectionId}/items/{featureId}", "get", "getFeature", "One feature", ("Data",),
              ("collectionId", "featureId", "f"), {"200": "Feature", **_NOT_FOUND, **_ERRORS}),
    Operation("/uploads", "post", "createUpload", "Upload a file (raw body or multipart 'file')", ("Uploads",),
              ("filename",), {"201": "UploadCreated", "400": "InvalidParameter", "401": "Unauthorized",
                              "413": "PayloadTooLarge", "415": "UnsupportedMediaType", "500": "ServerError"}),
    Operation("/uploads/{uploadId}", "get", "getUpload", "An uploaded file", ("Uploads",), ("uploadId", "f"),
              {"200": "Upload", **_NOT_FOUND, **_ERRORS}),
    Operation("/uploads/{uploadId}", "delete", "deleteUpload", "Delete an uploaded file", ("Uploads",),
              ("uploadId",), {"204": "Deleted", **_NOT_FOUND, **_ERRORS}),
)


_OAS31_ONLY = ("contentMediaType", "contentEncoding", "contentSchema")


def _local_refs(schema: Any) -> Any:
    """Catalog schemas point at the OGC-hosted schemas; inside this document, at components.
    OAS 3.0 schema objects lack the content* keywords the OGC schemas use: they become x-."""
    if isinstance(schema, dict):
        out = {(f"x-{k}" if k in _OAS31_ONLY else k): _local_refs(v) for k, v in schema.items()}
        if isinstance(out.get("$ref"), str) and out["$ref"] in _REF_MAP:
            out["$ref"] = _REF_MAP[out["$ref"]]
        return out
    if isinstance(schema, list):
        return [_local_refs(v) for v in schema]
    return schema


def _execute_body(spec: ProcessSpec) -> dict[str, Any]:
    wire_forms = [_s("qualifiedInputValue"), _s("link")]
    inputs = {
        p.name: {
            "description": p.description or p.title or p.name,
            "anyOf": [_local_refs(translate.param_schema(p)), *wire_forms],
        }
        for p in spec.inputs
    }
    required = [p.name for p in spec.inputs if p.required and p.default is None]
    inputs_schema: dict[str, Any] = {"type": "object", "properties": inputs, "additionalProperties": False}
    if required:
        inputs_schema["required"] = required
    return {
        "type": "object",
        "properties": {
            "inputs": inputs_schema,
            "outputs": {
                "type": "object",
                "properties": {o.name: _s("output") for o in spec.outputs},
                "additionalProperties": False,
            },
            "response": {"type": "string", "enum": ["raw", "document"], "default": "raw"},
            "subscriber": _s("subscriber"),
        },
        "additionalProperties": False,
    }


def _callbacks() -> dict[str, Any]:
    def event(uri: str, schema: str, description: str) -> dict[str, Any]:
        return {
            f"{{$request.body#/subscriber/{uri}}}": {
                "post": {
                    "summary": description,
                    "requestBody": {"content": {"application/json": {"schema": _s(schema)}}},
                    "responses": {"200": {"description": "Delivered (any 2xx)."}},
                }
            }
        }

    return {
        "jobSucceeded": event("successUri", "results", "The results document of a succeeded job."),
        "jobFailed": event("failedUri", "exception", "The exception document of a failed or dismissed job."),
        "jobInProgress": event("inProgressUri", "statusInfo", "The status of a job that started running."),
    }


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": [_ref("parameters", p) for p in op.parameters],
        "responses": {code: _ref("responses", name) for code, name in op.responses.items()},
    }
    if op.operation_id == "createCollection":
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": _s("ingest")}}}
    if op.operation_id == "createUpload":
        doc["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}, "description": {"type": "string"}}}},
            "*/*": {"schema": {"type": "string", "format": "binary"}},
        }}
    if op.operation_id == "execute":
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": _s("execute")}}}
        doc["callbacks"] = _callbacks()
    return doc


def openapi_document(specs: Sequence[ProcessSpec], urls: translate.Urls, *, title: str, version: str) -> dict[str, Any]:
    """The whole API definition, including one execute operation per visible process."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    generic = paths["/processes/{processID}/execution"]["post"]
    for spec in specs:
        execute = copy.deepcopy({k: v for k, v in generic.items() if k != "parameters"})
        execute["operationId"] = f"execute_{spec.id}"
        execute["summary"] = f"Execute {spec.title}"
        execute["description"] = spec.description
        execute["tags"] = [spec.id]
        execute["parameters"] = [_ref("parameters", "Prefer")]
        execute["requestBody"]["content"]["application/json"]["schema"] = _execute_body(spec)
        paths[f"/processes/{spec.id}/execution"] = {"post": execute}
    responses = copy.deepcopy(RESPONSES)
    responses["APIDefinition"] = {
        "description": "This document (and an HTML rendering of it).",
        "content": {translate.OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}}, **_HTML},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "OGC API - Processes - Part 1: Core 1.0 (classes: "
            + ", ".join(translate.CONFORMANCE_CLASSES) + ") and OGC API - Features - Part 1: Core 1.0 "
            "(classes: " + ", ".join(translate.FEATURES_CONFORMANCE_CLASSES) + ") over the layer catalog, "
            "with uploads and ingest.",
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "servers": [{"url": urls.root.rstrip("/")}],
        "tags": [
            {"name": "Capabilities"}, {"name": "Processes"}, {"name": "Jobs"}, {"name": "Data"}, {"name": "Uploads"},
            *({"name": s.id, "description": s.title} for s in specs),
        ],
        "security": [{}, {"sessionCookie": []}],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": responses,
            "parameters": copy.deepcopy(PARAMETERS),
            "securitySchemes": {
                "sessionCookie": {
                    "type": "apiKey", "in": "cookie", "name": "sessionid",
                    "description": "A signed-in browser session; anonymous access runs as the default "
                    "tenant's anonymous principal.",
                }
            },
        },
    }
