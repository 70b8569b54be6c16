"""Format negotiation: ``f`` from the query or the form body (arcgis-python POSTs ``f=json``
in the body), else HTML for browsers and JSON for everyone else."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from controlplane.exceptions import InvalidParameterValue


class FormatNotSupported(InvalidParameterValue):
    code = "format-not-supported"
    title = "Format not supported"


def requested_format(request: Any) -> str:
    wanted = request.query_params.get("f")
    if not wanted and request.method == "POST":
        data = request.data
        value = data.get("f") if hasattr(data, "get") else None
        wanted = value if isinstance(value, str) else None
    return (wanted or "").strip().lower()


class GPContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Any, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        wanted = requested_format(request)
        if wanted:
            chosen = [r for r in renderers if r.format == wanted]
            if not chosen:
                offered = sorted({str(r.format) for r in renderers})
                view = (getattr(request, "parser_context", None) or {}).get("view")
                subject = getattr(view, "format_subject", "")
                if subject:
                    # Esri's answer to a format a result does not come in (pbf, image).
                    raise FormatNotSupported(
                        f"f={wanted}: format not supported for this {subject}; use f=" + " or f=".join(offered)
                    )
                raise InvalidParameterValue(f"f={wanted!r} is not supported here; use f=" + " or f=".join(offered))
            return chosen[0], chosen[0].media_type
        accept = request.META.get("HTTP_ACCEPT", "")
        html = next((r for r in renderers if r.format == "html"), None)
        if html is not None and "text/html" in accept:
            return html, html.media_type
        return renderers[0], renderers[0].media_type
