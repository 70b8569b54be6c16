"""Request body parsing: JSON only, bounded (size, nesting, values), malformed JSON -> an OGC 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from controlplane.exceptions import PayloadTooLarge
from controlplane.services.jsonbounds import json_loads_bounded
from honua.requestbody import request_body_bound


@dataclass(frozen=True)
class ParsedBody:
    """A decoded JSON body and its size in bytes (admission limits count bytes)."""

    document: Any
    size: int


def body_limit() -> int:
    """The largest request body of this surface (``HONUA_OGC_MAX_BODY_BYTES``)."""
    configured = settings.HONUA.get("OGC_MAX_BODY_BYTES") or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return int(configured or 0) or 50 * 1024 * 1024


def request_bound(request: Request) -> None:
    """Refuse an oversized body before anything reads it (views call this first)."""
    request_body_bound(request._request, limit=body_limit())


class ExecuteJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> ParsedBody:
        limit = body_limit()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        if not raw.strip():
            return ParsedBody({}, 0)
        return ParsedBody(json_loads_bounded(raw, where="the body"), len(raw))


class AnyAsJSONParser(ExecuteJSONParser):
    """Clients that send no (or a wrong) Content-Type still get their JSON read."""

    media_type = "*/*"


def request_body(request: Request) -> ParsedBody:
    """The parsed execute body (an empty body counts as ``{}``)."""
    data = request.data
    return data if isinstance(data, ParsedBody) else ParsedBody({}, 0)
