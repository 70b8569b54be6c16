"""The job browser's rendering of errors: an HTML page with the error's status."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.exceptions import HonuaError, QuotaExceeded


def error_response(request: HttpRequest, exc: HonuaError) -> HttpResponse:
    """The error page of a HonuaError (its code, message and details), with its status."""
    response = render(
        request,
        "browser/error.html",
        {"title": exc.title, "error": exc},
        status=exc.status,
    )
    if isinstance(exc, QuotaExceeded):
        response["Retry-After"] = str(max(1, int(exc.retry_after)))
    return response
