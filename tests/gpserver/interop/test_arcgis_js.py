"""Interoperability: the ArcGIS Maps SDK for JavaScript (``@arcgis/core``) under Node against a
live Honua GPServer.

`make test` installs the SDK with ``npm ci`` into tests/gpserver/interop/js/node_modules (from
the committed package-lock.json, when node and npm exist). Each test runs one step of
js/gp_client.mjs (``node gp_client.mjs <services-url> <step>``) against pytest-django's
live_server, under a timeout, and judges the JSON it prints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.gpserver.interop.support import check_buffer, missing_client

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "gp_client.mjs"
STEP_TIMEOUT_S = 60

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed (the @arcgis/core interop tests need Node.js >= 18)")
    major = int(subprocess.run([path, "-p", "process.versions.node"], capture_output=True, text=True,
                               timeout=30, check=True).stdout.split(".")[0])
    if major < 18:
        pytest.skip(f"node {major} is too old (the @arcgis/core interop tests need >= 18)")
    if not (JS_DIR / "node_modules" / "@arcgis" / "core" / "package.json").is_file():
        missing_client("@arcgis/core", f"no {JS_DIR / 'node_modules'}; run `npm ci` there")
    return path


@pytest.fixture
def run_step(node: str, gp_live):
    def run(step: str) -> dict[str, Any]:
        try:
            proc = subprocess.run(
                [node, str(SCRIPT), gp_live.root, step, str(STEP_TIMEOUT_S * 1000)],
                cwd=JS_DIR, capture_output=True, text=True, timeout=STEP_TIMEOUT_S + 30,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"node {step} did not finish within {exc.timeout} s", pytrace=False)
        lines = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and lines, (
            f"node {step} exited {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )
        report = json.loads(lines[-1])
        assert report["offLoopback"] == [], f"@arcgis/core tried to leave loopback: {report['offLoopback']}"
        return report

    return run


def _explain(report: dict[str, Any]) -> str:
    trimmed = {k: v for k, v in report.items() if k != "requests"}
    requests = [f"{r['method']} {r['url'][:300]}" for r in report.get("requests", [])]
    return json.dumps(trimmed, indent=1)[:3000] + "\nrequests:\n  " + "\n  ".join(requests)


def test_execute_buffer(run_step):
    report = run_step("execute-buffer")
    assert report["ok"], _explain(report)
    results = {r["paramName"]: r for r in report["results"]}
    assert set(results) == {"result"}, _explain(report)
    attributes = check_buffer(results["result"]["value"])
    assert attributes.get("name") == "a", f"input attributes not carried over: {attributes}"


def test_submit_job_wait_and_fetch_result(run_step):
    report = run_step("submit-buffer")
    assert report["ok"], _explain(report)
    assert report["job"]["jobStatus"] == "job-succeeded", _explain(report)
    assert report["result"]["paramName"] == "result", _explain(report)
    check_buffer(report["result"]["value"])


def test_submit_job_echo_seen_running(run_step):
    report = run_step("submit-echo")
    assert report["ok"], _explain(report)
    assert report["job"]["jobStatus"] == "job-succeeded", _explain(report)
    assert "job-executing" in report["statuses"], _explain(report)
    assert report["result"]["value"] == "from @arcgis/core", _explain(report)
    assert report["job"]["messages"], _explain(report)


def test_cancel_job(run_step):
    report = run_step("cancel-echo")
    assert report["ok"], _explain(report)
    assert "job-executing" in report["statuses"], _explain(report)
    assert report["job"]["jobStatus"] == "job-cancelled", _explain(report)
    # waitForJobCompletion rejects with the JobInfo when the job ends cancelled.
    assert report["waitOutcome"]["resolved"] is False, _explain(report)
    assert report["seconds"] < 40, "the job ran to its end instead of stopping"


@pytest.mark.parametrize("step", ["execute-error", "submit-error"])
def test_error_rejects_the_promise(run_step, step):
    report = run_step(step)
    assert not report["ok"], f"the promise resolved: {_explain(report)}"
    assert not report["timedOut"], f"no answer within {STEP_TIMEOUT_S} s: {_explain(report)}"
    error = report["error"]
    assert error["name"] == "request:server", _explain(report)
    assert "esriParsecs" in (error["message"] or ""), _explain(report)
    # The Esri envelope arrived with HTTP 200; the SDK reports the envelope's code.
    assert error["httpStatus"] == 400, _explain(report)
