"""Real django-q2 ``qcluster`` workers: durability under SIGKILL, and cancellation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from controlplane.contracts import ExecutionMode, ExecutionRequest, Surface
from controlplane.models import AuditEvent, ProcessRun
from controlplane.services.execution import run_submit
from controlplane.services.runs import run_cancel

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgis://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def qcluster(honua_catalog) -> Iterator[list[subprocess.Popen]]:
    """Two qcluster processes with two workers each, on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "HONUA_LEASE_SECONDS": "2",
        "HONUA_Q_WORKERS": "2",
        "HONUA_Q_POLL": "0.1",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    yield procs
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _submit(principal, pause: float, text: str) -> str:
    result = run_submit(
        ExecutionRequest(
            process_id="echo",
            inputs={"string_input": text, "pause": pause},
            principal=principal,
            surface=Surface.OGC,
            mode=ExecutionMode.ASYNC,
        )
    )
    return str(result.run_id)


def _wait(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkilled_worker_loses_no_run_and_none_completes_twice(qcluster, principal):
    ids = [_submit(principal, 1.5, f"teststring-{i}") for i in range(12)]
    runs = ProcessRun.objects.filter(id__in=ids)
    _wait(lambda: runs.filter(status="running").count() >= 2, 60, "runs to start")
    victim = runs.filter(status="running").values_list("id", "lease_owner").first()
    assert victim is not None
    victim_id, owner = victim
    os.kill(int(owner.rsplit(":", 1)[1]), signal.SIGKILL)

    _wait(lambda: runs.filter(status="succeeded").count() == len(ids), 120, "every run to succeed")
    for run in runs:
        texts = [m["text"] for m in run.messages]
        assert texts.count("Succeeded.") == 1, texts
        assert run.outputs["string_input"] == f"teststring-{ids.index(str(run.id))}"
    killed = ProcessRun.objects.get(id=victim_id)
    assert killed.attempt_count == 2
    assert killed.lease_owner != owner
    assert AuditEvent.objects.filter(object_id=str(victim_id), action="run.lease_expired").exists()


def test_cancellation_reaches_a_running_job(qcluster, principal):
    run_id = _submit(principal, 30, "long")
    run = ProcessRun.objects.filter(id=run_id)
    _wait(lambda: run.filter(status="running").exists(), 60, "the run to start")
    time.sleep(0.5)
    started = time.monotonic()
    run_cancel(run_id=run_id, tenant_id=run.get().tenant_id, actor="tester")
    _wait(lambda: run.filter(status="cancelled").exists(), 10, "the run to be cancelled")
    assert time.monotonic() - started < 5
    assert run.get().finished_at is not None
