"""Renderers of the OGC surface: JSON, minimal HTML pages, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import orjson
from django.template.loader import render_to_string
from rest_framework.renderers import BaseRenderer, JSONRenderer

from ogcprocesses.translate import OPENAPI_MEDIA_TYPE


def _default(value: Any) -> Any:
    return str(value)  # lazy strings and other text-like values


def _pretty(value: Any) -> str:
    return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2).decode()


class OgcJSONRenderer(JSONRenderer):
    """JSON with orjson: results may hold millions of coordinates."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type or "", renderer_context or {})
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        if indent:
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(data, default=_default, option=option)


class OgcHTMLRenderer(BaseRenderer):
    """Renders the JSON document through the view's template (every link as an <a>)."""

    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        context = renderer_context or {}
        view = context.get("view")
        template = getattr(view, "template_name", "") or "ogcprocesses/document.html"
        links = data.get("links", []) if isinstance(data, dict) else []
        page = {"doc": data, "links": links, "title": getattr(view, "page_title", "OGC API - Processes")}
        if isinstance(data, dict):
            # Parameter schemas shown as the JSON they are (a template prints Python's repr).
            for key in ("inputs", "outputs"):
                if isinstance(data.get(key), dict):
                    page[key] = [
                        {**param, "id": name, "schema_json": _pretty(param.get("schema"))}
                        for name, param in data[key].items()
                    ]
        return render_to_string(template, page, request=context.get("request")).encode("utf-8")


class OpenAPIRenderer(OgcJSONRenderer):
    """``application/vnd.oai.openapi+json;version=3.0`` (the parameter is set on the response
    because DRF negotiation would not match a parameterised type against ``*/*``)."""

    media_type = "application/vnd.oai.openapi+json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = OPENAPI_MEDIA_TYPE
        return super().render(data, accepted_media_type, renderer_context)


class GeoJSONRenderer(OgcJSONRenderer):
    """OGC API - Features items: ``application/geo+json`` (``f=json`` asks for it too)."""

    media_type = "application/geo+json"
    format = "json"
