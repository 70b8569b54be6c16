"""gunicorn configuration of `make run` (scripts/serve.py passes it with --config).

Prometheus multiprocess mode: each worker writes its samples to files named by its pid in
PROMETHEUS_MULTIPROC_DIR; when a worker exits, its live gauges are dropped (counters and
histograms stay, so totals never go backwards).
"""

from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
