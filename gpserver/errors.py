"""One exception handler for the GPServer views: every error is Esri's error envelope,
answered with HTTP 200 (Esri clients read errors from the body; arcgis-python re-sends POSTs
that get a real 5xx, which would duplicate jobs)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from controlplane.exceptions import HonuaError, QuotaExceeded
from gpserver.tokens import auth_error
from gpserver.translate import INVALID_URL, error_document, honua_error_document

log = logging.getLogger("honua.gpserver")


def error_body(exc: Exception) -> tuple[dict[str, Any], dict[str, str]]:
    """The envelope of any error, and headers worth sending with it."""
    headers: dict[str, str] = {}
    if isinstance(exc, HonuaError):
        if isinstance(exc, QuotaExceeded):
            headers["Retry-After"] = str(max(1, int(exc.retry_after)))
        esri = auth_error(exc)
        if esri is not None:
            details = [d for d in (exc.message, *exc.details) if d != esri[1]]
            return error_document(esri[0], esri[1], details, exc.code), headers
        return honua_error_document(exc), headers
    if isinstance(exc, Http404):
        return INVALID_URL, headers
    if isinstance(exc, drf.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_document(exc.status_code, detail, [detail], str(exc.default_code)), headers
    if isinstance(exc, RequestDataTooBig):
        return error_document(413, "The request is too large", [str(exc)], "payload-too-large"), headers
    if isinstance(exc, SuspiciousOperation):
        return error_document(400, "Invalid request", [str(exc)], "invalid-request"), headers
    log.error("unhandled error in the GPServer API", exc_info=exc)
    return error_document(
        500, "Error performing the operation", ["an unexpected error occurred; it was logged"], "server-error"
    ), headers


def gp_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF ``EXCEPTION_HANDLER`` of the GPServer views (always HTTP 200)."""
    body, headers = error_body(exc)
    return Response(body, status=200, headers=headers)
