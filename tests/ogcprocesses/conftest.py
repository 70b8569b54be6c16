"""Fixtures of the OGC API - Processes tests: catalog, a tier that runs echo, a client, a worker."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from django.test import Client

from executors.base import Executor
from tests.ogcprocesses.support import EchoOnlyExecutor, OgcClient


@pytest.fixture
def echo_tier(monkeypatch: pytest.MonkeyPatch) -> Executor:
    """The inprocess executor if it registers ``echo``; otherwise the stand-in, patched in."""
    from controlplane.services import execution
    from executors.registry import get_executor

    try:
        real = get_executor("inprocess")
    except Exception:  # the tier module is owned elsewhere and may be mid-change
        real = None
    if real is not None and real.supports("echo"):
        return real
    stand_in = EchoOnlyExecutor()
    original = execution.get_executor

    def patched(tier: str) -> Executor | None:
        return stand_in if tier == "inprocess" else original(tier)

    monkeypatch.setattr(execution, "get_executor", patched)
    return stand_in


@pytest.fixture
def ogc(honua_catalog: None, echo_tier: Executor) -> None:
    """The catalog (echo included) and the demo tenant, with a tier that runs echo."""




@pytest.fixture
def api(client: Client) -> OgcClient:
    return OgcClient(client)


@pytest.fixture
def worker() -> Iterator[Callable[[str], threading.Thread]]:
    """Runs a queued job in a background thread, as a django-q2 worker would (task by id)."""
    threads: list[threading.Thread] = []

    def start(job_id: str) -> threading.Thread:
        from controlplane.tasks import run_execute

        def work() -> None:
            try:
                run_execute(job_id)
            finally:
                connection.close()

        thread = threading.Thread(target=work, name=f"test-worker-{job_id}", daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(30)
