"""Process-wide runtime tuning applied once the application is loaded."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Freeze the objects loaded at start-up out of the collector's reach and collect less
    often: requests that parse or build large GeoJSON create hundreds of thousands of
    containers, and every default-threshold collection would rescan all of Django."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
