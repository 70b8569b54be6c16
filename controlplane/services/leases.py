"""One lease keeper thread per process renews the leases of every run executing here.

It also carries cancellation: a run whose status became ``cancelling`` has its cancel
event set, and a run whose lease was lost (taken over after expiry) is told to stop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connection

log = logging.getLogger("honua.leases")


def worker_identity() -> str:
    """A lease owner name unique to this process (host:pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseKeeper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[threading.Event, list[Callable[[], None]]]] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wake = threading.Event()
        self._last_reap = 0.0
        self._stopping = False

    def register(self, run_id: str, cancel_event: threading.Event) -> None:
        with self._lock:
            self._runs[run_id] = (cancel_event, [])
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="honua-lease-keeper", daemon=True)
                self._thread.start()

    def on_cancel(self, run_id: str, callback: Callable[[], None]) -> None:
        with self._lock:
            if run_id in self._runs:
                self._runs[run_id][1].append(callback)

    def unregister(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def stop(self) -> None:
        """Stop the thread and close its connection (tests; process shutdown)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None
        self._stopping = False

    def _interval(self) -> float:
        return max(0.2, min(2.0, settings.HONUA["LEASE_SECONDS"] / 4))

    def _reap(self) -> None:
        """Every lease period, any live worker returns the runs of dead ones to the queue."""
        from controlplane.services.runs import runs_reap_expired

        now = time.monotonic()
        if now - self._last_reap < settings.HONUA["LEASE_SECONDS"]:
            return
        self._last_reap = now
        try:
            runs_reap_expired()
        except Exception:
            log.exception("reaping expired leases failed")

    def _loop(self) -> None:
        from controlplane.services.runs import run_renew_leases

        owner = worker_identity()
        while True:
            self._wake.wait(self._interval())
            self._wake.clear()
            if self._stopping:
                connection.close()
                return
            self._reap()
            with self._lock:
                ids = list(self._runs)
            if not ids:
                continue
            try:
                held = run_renew_leases(owner=owner, run_ids=ids)
            except Exception:  # the database may blip; the next round retries
                log.exception("lease renewal failed")
                close_old_connections()
                connection.close()
                continue
            for rid in ids:
                status = held.get(rid)
                if status is None or status == "cancelling":
                    with self._lock:
                        entry = self._runs.get(rid)
                    if entry and not entry[0].is_set():
                        entry[0].set()
                        for callback in entry[1]:
                            try:
                                callback()
                            except Exception:
                                log.exception("cancel callback failed", extra={"run_id": rid})


keeper = LeaseKeeper()
