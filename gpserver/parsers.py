"""Request bodies: form-encoded and multipart (what Esri clients send); JSON objects and
bodies without a Content-Type are read as forms too."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.http import QueryDict
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.request import Request

from controlplane.exceptions import InvalidRequest, PayloadTooLarge


def _limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) or 50 * 1024 * 1024


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
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
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
