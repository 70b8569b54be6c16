"""Request bodies: form-encoded and multipart (what Esri clients send); JSON objects and
bodies without a Content-Type are read as forms too. Every body is bounded before it is
read (``request_bound``); JSON is bounded in nesting and values before it is parsed."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.http import QueryDict
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.request import Request

from controlplane.exceptions import InvalidRequest, PayloadTooLarge
from controlplane.services.jsonbounds import json_loads_bounded
from honua.requestbody import request_body_bound

# Uploads carry a file plus a few form fields and the multipart framing around them.
UPLOAD_VIEWS = frozenset({"upload", "upload-part"})
MULTIPART_OVERHEAD = 64 * 1024


def _limit() -> int:
    """The largest body of this surface but uploads (``HONUA_GP_MAX_BODY_BYTES``)."""
    configured = settings.HONUA.get("GP_MAX_BODY_BYTES") or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return int(configured or 0) or 50 * 1024 * 1024


def body_limit(request: Request) -> int:
    """The largest body of this request: an upload's file size limit, else the surface's."""
    match = getattr(request._request, "resolver_match", None)
    if match is not None and match.url_name in UPLOAD_VIEWS:
        return int(settings.HONUA.get("UPLOAD_MAX_BYTES", 100 * 1024 * 1024)) + MULTIPART_OVERHEAD
    return _limit()


def request_bound(request: Request) -> None:
    """Refuse an oversized body before anything reads it (views call this first)."""
    request_body_bound(request._request, limit=body_limit(request))


class JSONFormParser(BaseParser):
    """A JSON object body: each member is a form field (structured members as JSON text)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> QueryDict:
        raw = stream.read(_limit() + 1) if stream is not None else b""
        if len(raw) > _limit():
            raise PayloadTooLarge(f"the request body exceeds {_limit()} bytes")
        out = QueryDict(mutable=True)
        if not raw.strip():
            return out
        doc = json_loads_bounded(raw, where="the body")
        if not isinstance(doc, dict):
            raise InvalidRequest("a JSON body must be an object of parameter name -> value")
        for key, value in doc.items():
            out[str(key)] = value if isinstance(value, str) else orjson.dumps(value).decode()
        return out


class AnyFormParser(FormParser):
    """Bodies with no (or another) Content-Type, read as ``application/x-www-form-urlencoded``."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> QueryDict:
        raw = stream.read(_limit() + 1) if stream is not None else b""
        if len(raw) > _limit():
            raise PayloadTooLarge(f"the request body exceeds {_limit()} bytes")
        return QueryDict(raw, encoding="utf-8")


PARSERS = [FormParser, MultiPartParser, JSONFormParser, AnyFormParser]


def form_params(request: Request) -> dict[str, str]:
    """Query and body fields as one mapping (the body wins); files are left out."""
    params = {k: v for k, v in request.query_params.items()}
    data = request.data
    if hasattr(data, "items"):
        for key, value in data.items():
            if isinstance(value, str):
                params[key] = value
    return params


def request_bytes(params: dict[str, str]) -> int:
    """The size of the request's parameters as decoded text: what the same inputs weigh as an
    OGC JSON body (admission limits count bytes; URL encoding must not inflate them)."""
    return sum(len(k) + len(v) for k, v in params.items())
