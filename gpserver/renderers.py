"""Renderers of the GPServer surface: ``f=json``, ``f=pjson`` (indented) and ``f=html``."""

from __future__ import annotations

import re
from typing import Any

import orjson
from django.template.loader import render_to_string
from rest_framework.renderers import BaseRenderer


def _default(value: Any) -> Any:
    return str(value)  # lazy strings and other text-like values


class GPJSONRenderer(BaseRenderer):
    """JSON with orjson: results may hold millions of coordinates."""

    media_type = "application/json"
    format = "json"
    charset = "utf-8"
    indent = False

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        if self.indent:
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(data, default=_default, option=option)


class GPPrettyJSONRenderer(GPJSONRenderer):
    """``f=pjson``: the same document, indented for people."""

    format = "pjson"
    indent = True


class GPGeoJSONRenderer(GPJSONRenderer):
    """``f=geojson`` of results and inputs (the view builds the FeatureCollection)."""

    media_type = "application/geo+json"
    format = "geojson"


class GPKMZRenderer(BaseRenderer):
    """``f=kmz`` of results and inputs: the bytes the view made (``gpserver.formats``)."""

    media_type = "application/vnd.google-earth.kmz"
    format = "kmz"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data if isinstance(data, bytes) else orjson.dumps(data)



def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _form_inputs(data: Any) -> list[dict[str, Any]]:
    """The input parameters of a task document, with their defaults as form text."""
    params = data.get("parameters") if isinstance(data, dict) else None
    if not isinstance(params, list):
        return []
    return [
        {**p, "default_text": _text(p.get("defaultValue")), "scalar": p.get("dataType") in _SCALAR}
        for p in params
        if p.get("direction") == "esriGPParameterDirectionInput"
    ]


_SCALAR = {"GPString", "GPLong", "GPDouble", "GPBoolean", "GPDate"}


class GPHTMLRenderer(BaseRenderer):
    """A Services-Directory-style page: the view's template with the JSON document."""

    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        context = renderer_context or {}
        view = context.get("view")
        request = context.get("request")
        is_error = isinstance(data, dict) and "error" in data
        template = "gpserver/error.html" if is_error else (getattr(view, "template_name", "") or "gpserver/document.html")
        path = request.path.rstrip("/") if request is not None else ""
        job_path = path
        if is_error is False and isinstance(data, dict) and data.get("jobId") and not path.endswith(str(data["jobId"])):
            job_path = re.sub(r"/(cancel|delete)$", "", path)
            if job_path.endswith("/submitJob"):
                job_path = job_path[: -len("/submitJob")] + "/jobs/" + str(data["jobId"])
        pretty = orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
        return render_to_string(
            template,
            {
                "doc": data,
                "pretty": pretty,
                "path": path,
                "job_path": job_path,
                "title": getattr(view, "page_title", "ArcGIS REST Services Directory"),
                "crumbs": getattr(view, "breadcrumbs", lambda: [])() if view is not None else [],
                "inputs": _form_inputs(data),
            },
            request=request,
        ).encode("utf-8")
