"""One exception handler for the OGC views: every error is an OGC exception document.

``HonuaError`` carries its code and status; DRF's own errors (malformed JSON, 405, 415)
and Django's 404 are mapped onto the same shape. Bodies are ``application/json`` (the ETS
reads ``application/problem+json`` as JSON only in some tests).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf

from controlplane.exceptions import HonuaError, InvalidCredentials, NotAuthenticated, QuotaExceeded
from ogcprocesses.translate import exception_document

log = logging.getLogger("honua.ogcprocesses")

_DRF_CODES = {
    drf.ParseError: ("invalid-request", "Invalid request"),
    drf.UnsupportedMediaType: ("unsupported-media-type", "Unsupported media type"),
    drf.MethodNotAllowed: ("method-not-allowed", "Method not allowed"),
    drf.NotAcceptable: ("not-acceptable", "Not acceptable"),
    drf.NotFound: ("not-found", "Not found"),
}


def _instance(context: dict[str, Any]) -> str:
    request = context.get("request")
    return request.build_absolute_uri() if request is not None else ""


def exception_response(exc: Exception, instance: str) -> HttpResponse:
    """The OGC exception document of any error, with its status and headers."""
    headers: dict[str, str] = {}
    if isinstance(exc, HonuaError):
        doc = exception_document(
            code=exc.code, title=exc.title, status=exc.status, detail=exc.message,
            instance=str(exc.extra.get("instance") or instance), details=exc.details,
        )
        if isinstance(exc, QuotaExceeded):
            headers["Retry-After"] = str(max(1, int(exc.retry_after)))
        if isinstance(exc, NotAuthenticated):
            # RFC 6750 (a token or a key as bearer; keys also go in X-API-Key).
            invalid = ', error="invalid_token"' if isinstance(exc, InvalidCredentials) else ""
            headers["WWW-Authenticate"] = f'Bearer realm="honua"{invalid}'
    elif isinstance(exc, drf.APIException):
        code, title = next(
            (v for k, v in _DRF_CODES.items() if isinstance(exc, k)), (str(exc.default_code), "Error")
        )
        doc = exception_document(
            code=code, title=title, status=exc.status_code, detail=str(exc.detail), instance=instance
        )
    elif isinstance(exc, Http404):
        doc = exception_document(
            code="not-found", title="Not found", status=404,
            detail=str(exc) or "no such resource", instance=instance,
        )
    else:
        log.error("unhandled error in the OGC API", exc_info=exc)
        doc = exception_document(
            code="server-error", title="Server error", status=500,
            detail="an unexpected error occurred; it was logged", instance=instance,
        )
    response = HttpResponse(orjson.dumps(doc), status=doc["status"], content_type="application/json")
    for key, value in headers.items():
        if value:
            response[key] = value
    return response


def ogc_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """DRF ``EXCEPTION_HANDLER`` of the OGC views."""
    return exception_response(exc, _instance(context))
