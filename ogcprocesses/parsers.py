"""Request body parsing: JSON only, bounded, malformed JSON -> an OGC 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from controlplane.exceptions import InvalidRequest, PayloadTooLarge


@dataclass(frozen=True)
class ParsedBody:
    """A decoded JSON body and its size in bytes (admission limits count bytes)."""

    document: Any
    size: int


class ExecuteJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> ParsedBody:
        limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) or 50 * 1024 * 1024
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        if not raw.strip():
            return ParsedBody({}, 0)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
        return ParsedBody(document, len(raw))


class AnyAsJSONParser(ExecuteJSONParser):
    """Clients that send no (or a wrong) Content-Type still get their JSON read."""

    media_type = "*/*"


def request_body(request: Request) -> ParsedBody:
    """The parsed execute body (an empty body counts as ``{}``)."""
    data = request.data
    return data if isinstance(data, ParsedBody) else ParsedBody({}, 0)
