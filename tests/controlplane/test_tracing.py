"""W3C traceparent: from either API onto the run, into its execution span (executor context
and JSON log lines), echoed to the client; a run without one starts its own trace."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from controlplane.models import ProcessRun
from executors.base import ExecutionContext, Executor
from honua.logging import JsonFormatter
from honua.tracecontext import TraceContext
from tests.gpserver.conftest import gp  # noqa: F401  (fixture)
from tests.gpserver.support import ANALYSIS
from tests.ogcprocesses.conftest import echo_tier, ogc  # noqa: F401  (fixtures)
from tests.ogcprocesses.support import API, job_id_of, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc", "gp")]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEADER = f"00-{TRACE}-{PARENT}-01"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def contexts(monkeypatch: pytest.MonkeyPatch, echo_tier: Executor) -> list[ExecutionContext]:  # noqa: F811
    """The contexts the inprocess tier is given (it still runs echo for real)."""
    from controlplane.services import execution

    seen: list[ExecutionContext] = []

    class Recording(Executor):
        tier = "inprocess"

        def supports(self, handler: str) -> bool:
            return echo_tier.supports(handler)

        def execute(self, handler: str, inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
            seen.append(ctx)
            return echo_tier.execute(handler, inputs, ctx)

    recording = Recording()
    original = execution.get_executor
    monkeypatch.setattr(execution, "get_executor", lambda t: recording if t == "inprocess" else original(t))
    return seen


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the JSON formatter writes for the execution logger (formatted as it is emitted)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("honua.execution")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def _post_ogc(client, header: str | None, prefer: str | None = None, text: str = "t") -> Any:
    headers = {"Accept": "application/json"}
    if header is not None:
        headers["traceparent"] = header
    if prefer:
        headers["Prefer"] = prefer
    return client.post(
        f"{API}processes/echo/execution", data=json.dumps({"inputs": {"string_input": text}}),
        content_type="application/json", headers=headers,
    )


def test_an_ogc_traceparent_reaches_the_executor_as_a_child_span_and_the_log_lines(
    client, contexts, json_lines
):
    response = _post_ogc(client, HEADER)
    assert response.status_code == 200 and response["traceparent"] == HEADER
    run = ProcessRun.objects.get()
    assert run.trace_parent == HEADER

    (ctx,) = contexts
    span = TraceContext.parse(ctx.trace_parent)
    assert span is not None and span.trace_id == TRACE and span.span_id != PARENT

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    finished = [doc for doc in lines if doc["message"] == "run finished"]
    assert len(finished) == 1, lines
    doc = finished[0]
    assert doc["run_id"] == str(run.id) and doc["trace_id"] == TRACE
    assert doc["span_id"] == span.span_id and doc["parent_span_id"] == PARENT
    assert doc["status"] == "succeeded" and doc["process_id"] == "echo" and doc["tier"] == "inprocess"


@pytest.mark.parametrize(
    "header",
    [None, HEADER.upper(), f"00-{'0' * 32}-{PARENT}-01", "garbage"],
    ids=["absent", "uppercase", "zero-trace", "garbage"],
)
def test_a_run_without_a_valid_traceparent_starts_its_own_trace(client, header):
    response = _post_ogc(client, header, prefer="respond-async")
    assert response.status_code == 201
    run = ProcessRun.objects.get(id=job_id_of(response))
    started = TraceContext.parse(run.trace_parent)
    assert started is not None and started.trace_id not in (TRACE, "0" * 32)
    assert response["traceparent"] == run.trace_parent
    assert "traceparent" in response["Access-Control-Expose-Headers"]


def test_gpserver_execute_and_submit_job_carry_the_traceparent(client, contexts):
    execute = client.post(
        f"{ANALYSIS}/echo/execute", {"f": "json", "string_input": "x"}, headers={"traceparent": HEADER}
    )
    assert execute.status_code == 200 and execute["traceparent"] == HEADER
    assert TraceContext.parse(contexts[0].trace_parent).trace_id == TRACE

    other = f"00-{'ab' * 16}-{'cd' * 8}-00"
    submitted = client.post(
        f"{ANALYSIS}/echo/submitJob", {"f": "json", "string_input": "y"}, headers={"traceparent": other}
    )
    job = json.loads(submitted.content)["jobId"]
    assert submitted["traceparent"] == other
    assert ProcessRun.objects.get(id=job.removeprefix("j")).trace_parent == other

    untraced = client.post(f"{ANALYSIS}/echo/submitJob", {"f": "json", "string_input": "z"})
    assert TraceContext.parse(untraced["traceparent"]) is not None
    assert untraced["traceparent"] not in (HEADER, other)


# --- a real qcluster worker ----------------------------------------------------------------------


@pytest.fixture
def qcluster_logged(honua_catalog, tmp_path) -> Iterator[tuple[Path, Path]]:
    """One qcluster (one worker) on the test database, its stderr (the JSON log) kept in a
    file and its metrics written in multiprocess mode to a directory of its own."""
    log_path, metrics_dir = tmp_path / "qcluster.log", tmp_path / "prometheus"
    metrics_dir.mkdir()
    s = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgis://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
        "HONUA_Q_WORKERS": "1",
        "HONUA_Q_POLL": "0.1",
        "HONUA_LOG_LEVEL": "INFO",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True,
        )
        try:
            yield log_path, metrics_dir
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.workers
def test_the_traceparent_reaches_the_worker_and_its_metrics_reach_the_scrape(
    client, qcluster_logged, monkeypatch
):
    log_path, metrics_dir = qcluster_logged
    response = _post_ogc(client, HEADER, prefer="respond-async", text="via the queue")
    assert response.status_code == 201 and response["traceparent"] == HEADER
    run_id = job_id_of(response)
    wait_for(lambda: ProcessRun.objects.filter(id=run_id, status="succeeded").exists(), timeout=60)

    def worker_lines() -> list[dict[str, Any]]:
        docs = []
        for line in log_path.read_text().splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue  # a line not written by Honua's formatter
        return [d for d in docs if isinstance(d, dict) and d.get("run_id") == run_id]

    wait_for(lambda: any(d["message"] == "run finished" for d in worker_lines()), timeout=10)
    (finished,) = [d for d in worker_lines() if d["message"] == "run finished"]
    assert finished["trace_id"] == TRACE and finished["parent_span_id"] == PARENT
    assert finished["span_id"] != PARENT and finished["status"] == "succeeded"
    assert finished["process_id"] == "echo" and finished["tier"] == "inprocess"

    # The worker's own samples, merged as /metrics does in multiprocess mode.
    assert any(metrics_dir.glob("counter_*.db"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    scraped = client.get("/metrics")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(scraped.content.decode())
        for s in family.samples
    }
    echo = {("process", "echo"), ("tier", "inprocess")}
    assert samples[("honua_executions_total", frozenset(echo | {("outcome", "succeeded")}))] == 1
    assert samples[("honua_run_duration_seconds_count", frozenset(echo))] == 1
    assert samples[("honua_queue_depth", frozenset({("resource_class", "cpu_burst")}))] == 0
