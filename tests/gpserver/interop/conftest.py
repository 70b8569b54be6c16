"""Fixtures of the GPServer interop tests: a live Honua on loopback with a job worker, and a
guard that fails a test whose client tries to reach anything but loopback."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection


@dataclass(frozen=True)
class GPLive:
    """URLs of the live server's shipped GP services."""

    root: str  # {live}/arcgis/rest/services

    @property
    def geometry(self) -> str:
        """The synchronous service (esriExecutionTypeSynchronous)."""
        return self.root + "/Honua/Geometry/GPServer"

    @property
    def analysis(self) -> str:
        """The asynchronous service (esriExecutionTypeAsynchronous)."""
        return self.root + "/Honua/Analysis/GPServer"


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Python sockets of this process may only connect to loopback while a test runs (libpq
    connects outside Python and is not affected). Attempts elsewhere are refused and fail the
    test at teardown; proxies are bypassed for loopback."""
    attempts: list[str] = []
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def check(address: object) -> None:
        if not _is_loopback(address):
            attempts.append(repr(address))
            raise OSError(f"interop tests reach loopback only, not {address!r}")

    def connect(self: socket.socket, address: object) -> None:
        check(address)
        return original_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        check(address)
        return original_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost,::1")
    yield attempts
    assert not attempts, f"a client tried to leave loopback: {attempts}"


@pytest.fixture
def job_worker(honua_catalog: None) -> Iterator[None]:
    """Runs queued jobs as a django-q2 worker would (``run_execute`` by run id), each on its
    own thread so that a long job does not hold up the others."""
    from controlplane.contracts import RunStatus
    from controlplane.models import ProcessRun
    from controlplane.tasks import run_execute

    stop = threading.Event()
    started: set[str] = set()
    workers: list[threading.Thread] = []

    def work(run_id: str) -> None:
        try:
            run_execute(run_id)
        finally:
            connection.close()

    def poll() -> None:
        try:
            while not stop.is_set():
                queued = ProcessRun.objects.filter(status=RunStatus.QUEUED.value).values_list("id", flat=True)
                for run_id in map(str, queued[:16]):
                    if run_id not in started:
                        started.add(run_id)
                        thread = threading.Thread(target=work, args=(run_id,), name=f"gp-worker-{run_id}", daemon=True)
                        thread.start()
                        workers.append(thread)
                stop.wait(0.1)
        finally:
            connection.close()

    poller = threading.Thread(target=poll, name="gp-worker-poll", daemon=True)
    poller.start()
    yield
    stop.set()
    poller.join(10)
    deadline = time.monotonic() + 30
    for thread in workers:
        thread.join(max(0.1, deadline - time.monotonic()))


@pytest.fixture
def gp_live(live_server, honua_catalog: None, echo_tier: object, job_worker: None) -> GPLive:
    """The live server's shipped GP services (catalog synced, a tier that runs echo, a worker
    running queued jobs)."""
    return GPLive(root=live_server.url + "/arcgis/rest/services")
