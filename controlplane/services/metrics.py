"""Prometheus metrics: their definitions, the hook runs call as they finish, and the ledger
collector that reads queue depth, active runs and free capacity at scrape time.

Honua serves from several gunicorn workers and executes in qcluster worker processes, so
counters and histograms use prometheus-client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set (``scripts/serve.py`` sets it): each process writes its
own memory-mapped file and a scrape merges them. Ledger gauges are not per process: the
collector asks the database once per scrape.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from controlplane.contracts import ACTIVE_STATUSES, ResourceClass, RunStatus

log = logging.getLogger("honua.metrics")

# The multiprocess files are opened on a metric's first use; a missing directory would lose
# every sample of this process, so make it rather than fail.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

NO_TIER = "none"
# From a 1 ms inline buffer to an hours-long batch job.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    14400.0,
)

EXECUTIONS = Counter(
    "honua_executions",
    "Runs that reached a terminal status, by process, tier used and outcome (the final status).",
    ["process", "tier", "outcome"],
)
DURATION = Histogram(
    "honua_run_duration_seconds",
    "Run time from start (claim) to finish, by process and tier used.",
    ["process", "tier"],
    buckets=DURATION_BUCKETS,
)
FAILURES = Counter(
    "honua_run_failures",
    "Runs that failed or timed out, by process, tier and error code.",
    ["process", "tier", "code"],
)

_FAILED = {RunStatus.FAILED.value, RunStatus.TIMED_OUT.value}


def run_finished(
    *,
    process_id: str,
    tier: str,
    status: str,
    error_code: str | None,
    started_at: datetime | None,
    finished_at: datetime | None,
) -> None:
    """Count one finished run. Never raises: a metric must not break a run."""
    try:
        tier = tier or NO_TIER
        EXECUTIONS.labels(process_id, tier, status).inc()
        if started_at is not None and finished_at is not None:
            DURATION.labels(process_id, tier).observe(max(0.0, (finished_at - started_at).total_seconds()))
        if status in _FAILED:
            FAILURES.labels(process_id, tier, error_code or "unknown").inc()
    except Exception:  # the boundary of a side channel: the run itself is already recorded
        log.exception("recording run metrics failed", extra={"process_id": process_id})


# --- scrape time -----------------------------------------------------------------------------


def _classes(*names: Iterable[str]) -> list[str]:
    found = {rc.value for rc in ResourceClass}
    for group in names:
        found.update(group)
    return sorted(found)


class LedgerCollector(Collector):
    """Gauges read from the ProcessRun ledger at scrape time (one indexed aggregate over the
    active runs only): runs by status, queue depth and age, capacity and free slots."""

    def collect(self) -> Iterator[Any]:
        from controlplane.selectors import runs_active_summary

        started = time.perf_counter()
        up = GaugeMetricFamily(
            "honua_ledger_scrape_success", "1 if the ledger could be read for this scrape, else 0."
        )
        took = GaugeMetricFamily("honua_ledger_scrape_duration_seconds", "Time to read the ledger gauges.")
        try:
            rows = runs_active_summary(timeout_ms=int(settings.HONUA.get("METRICS_QUERY_TIMEOUT_MS", 2000)))
        except DatabaseError:
            log.warning("metrics: the ledger could not be read", exc_info=True)
            up.add_metric([], 0)
            took.add_metric([], time.perf_counter() - started)
            yield up
            yield took
            return
        capacity: dict[str, int] = {
            str(k): int(v) for k, v in (settings.HONUA.get("CLASS_CAPACITY") or {}).items()
        }
        classes = _classes(capacity, (r.resource_class for r in rows))
        statuses = sorted(s.value for s in ACTIVE_STATUSES)
        counts = {(r.resource_class, r.status): r.count for r in rows}
        oldest = {r.resource_class: r.oldest_seconds for r in rows if r.status == RunStatus.QUEUED.value}

        runs = GaugeMetricFamily(
            "honua_runs", "Active runs in the ledger by status and resource class.",
            labels=["status", "resource_class"],
        )
        depth = GaugeMetricFamily(
            "honua_queue_depth", "Runs queued for a worker, by resource class.", labels=["resource_class"]
        )
        age = GaugeMetricFamily(
            "honua_queue_oldest_age_seconds",
            "How long the oldest queued run has waited, by resource class (0: none queued).",
            labels=["resource_class"],
        )
        for rc in classes:
            for status in statuses:
                runs.add_metric([status, rc], counts.get((rc, status), 0))
            depth.add_metric([rc], counts.get((rc, RunStatus.QUEUED.value), 0))
            age.add_metric([rc], oldest.get(rc, 0.0))
        slots = GaugeMetricFamily(
            "honua_class_capacity_slots", "Configured run slots per resource class (HONUA_CLASS_CAPACITY).",
            labels=["resource_class"],
        )
        free = GaugeMetricFamily(
            "honua_class_free_slots",
            "Slots of a resource class not taken by a running (or cancelling) run.",
            labels=["resource_class"],
        )
        for rc in sorted(capacity):
            busy = counts.get((rc, RunStatus.RUNNING.value), 0) + counts.get((rc, RunStatus.CANCELLING.value), 0)
            slots.add_metric([rc], capacity[rc])
            free.add_metric([rc], max(0, capacity[rc] - busy))
        up.add_metric([], 1)
        took.add_metric([], time.perf_counter() - started)
        yield from (runs, depth, age, slots, free, up, took)


class _ThisProcess(Collector):
    """The default registry (this process's metrics and process/GC collectors)."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    """What one scrape exposes: every process's counters and histograms (merged from the
    multiprocess directory, or this process's own), plus the ledger gauges."""
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    registry.register(LedgerCollector())
    return registry
