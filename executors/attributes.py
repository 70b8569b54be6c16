"""Attribute values of features as arrays, shared by the tiers so they read them alike."""

from __future__ import annotations

import math

import numpy as np

from executors.geodata import Features


def numeric_values(features: Features, name: str) -> np.ndarray:
    """Property ``name`` of every feature as floats: NaN where it is missing, null, not a
    number (strings and booleans are not numbers) or not finite."""
    out = np.full(len(features), np.nan)
    for k, props in enumerate(features.properties):
        value = props.get(name) if props else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                out[k] = number
    return out
