"""Format negotiation: ``?f=json|html`` first, then ``Accept``; JSON when nothing matches."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.utils.mediatypes import media_type_matches, order_by_precedence

from controlplane.exceptions import InvalidParameterValue


class OgcContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Any, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        wanted = request.query_params.get("f")
        if wanted:
            chosen = [r for r in renderers if r.format == wanted]
            if not chosen:
                offered = sorted({str(r.format) for r in renderers})
                raise InvalidParameterValue(f"f={wanted!r} is not offered here; use f=" + " or f=".join(offered))
            return chosen[0], chosen[0].media_type
        for media_types in order_by_precedence(self.get_accept_list(request)):
            for renderer in renderers:
                if any(media_type_matches(renderer.media_type, m) for m in media_types):
                    return renderer, renderer.media_type
        # Results and execute answers are not limited to the document media types: an Accept
        # naming an output's type must not turn into 406 for the JSON parts of the API.
        return renderers[0], renderers[0].media_type
