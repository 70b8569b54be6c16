"""Linear units: internal names and their length in meters ("degree" is angular)."""

from __future__ import annotations

LINEAR_UNITS: dict[str, float] = {
    "meter": 1.0,
    "kilometer": 1000.0,
    "centimeter": 0.01,
    "millimeter": 0.001,
    "decimeter": 0.1,
    "foot": 0.3048,
    "us_survey_foot": 1200.0 / 3937.0,
    "inch": 0.0254,
    "yard": 0.9144,
    "mile": 1609.344,
    "nautical_mile": 1852.0,
    "point": 0.0254 / 72.0,
    "degree": float("nan"),
}


def to_meters(value: float, unit: str) -> float:
    """Length in meters of ``value`` ``unit`` (not for degrees)."""
    factor = LINEAR_UNITS[unit]
    if factor != factor:  # NaN: angular unit
        raise ValueError("degrees are not a linear length")
    return value * factor
