"""Helpers of the job browser tests: sample features and the form fields of a run."""

from __future__ import annotations

import json
from typing import Any

APP = "/app/"

# Three points in Honolulu (lon/lat): a buffer gives three polygons.
POINTS: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"name": "Aloha Tower"}, "geometry": {"type": "Point", "coordinates": [-157.8661, 21.3069]}},
        {"type": "Feature", "properties": {"name": "Iolani Palace"}, "geometry": {"type": "Point", "coordinates": [-157.8588, 21.3069]}},
        {"type": "Feature", "properties": {"name": "Kakaako Park"}, "geometry": {"type": "Point", "coordinates": [-157.8650, 21.2960]}},
    ],
}


def buffer_form(mode: str = "sync", distance: str = "100", unit: str = "meter", **extra: str) -> dict[str, str]:
    """The POST fields of the buffer form (what a browser sends for these values)."""
    return {
        "in_features": json.dumps(POINTS),
        "in_distance": distance,
        "in_distance_unit": unit,
        "in_method": "",
        "in_quad_segs": "8",
        "in_cap_style": "round",
        "in_join_style": "round",
        "mode": mode,
        **extra,
    }


def echo_form(mode: str = "async", pause: str = "", text: str = "hello") -> dict[str, str]:
    return {"in_string_input": text, "in_pause": pause, "mode": mode}


def job_id_of(response: Any) -> str:
    """The job id of the job page a submission redirected to."""
    return str(response["Location"]).rstrip("/").rsplit("/", 1)[-1]
