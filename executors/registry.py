"""Tier name -> executor instance. The scheduler reads capability flags, not names."""

from __future__ import annotations

import logging
from functools import cache
from importlib import import_module

from executors.base import Executor

log = logging.getLogger("honua.executors")

TIER_CLASSES: dict[str, str] = {
    "inprocess": "executors.inprocess.executor.InProcessExecutor",
    "postgis": "executors.postgis.executor.PostGISExecutor",
    "batch": "executors.batch.executor.BatchExecutor",
}


@cache
def get_executor(tier: str) -> Executor | None:
    """The executor of a tier, or None when the tier is not installed here."""
    path = TIER_CLASSES.get(tier)
    if path is None:
        return None
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(import_module(module), name)
    except ImportError:
        log.warning("execution tier %s is not installed here", tier, exc_info=True)
        return None
    return cls()


def known_tiers() -> list[str]:
    return list(TIER_CLASSES)
