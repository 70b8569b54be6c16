"""Bounds shared by the tiers' grid-making functions (hexbin, idw)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The most cells a grid may have unless the process's ``max_cells`` limit says otherwise.
DEFAULT_MAX_CELLS = 250_000


def max_cells(limits: Mapping[str, Any]) -> int:
    """The run's ``max_cells`` limit (the catalog's, tightened by the tenant's), else the
    default."""
    value = limits.get("max_cells")
    return DEFAULT_MAX_CELLS if value is None else int(value)
