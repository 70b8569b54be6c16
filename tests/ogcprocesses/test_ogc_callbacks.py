"""Callback payloads (class ``callback``): results document, exception, statusInfo; and an
end-to-end delivery through the control plane to a loopback subscriber."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from controlplane.contracts import Principal, RunStatus
from controlplane.selectors import run_get, run_outputs
from controlplane.services import notifications
from controlplane.tasks import run_execute, run_notify
from ogcprocesses.callbacks import build_payload
from tests.ogcprocesses.support import EXC, job_id_of
from tests.ogcschema import assert_valid

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]

DEMO = Principal(tenant="demo", username="callbacks")


def _job(api, inputs, **extra) -> str:
    response = api.execute({"inputs": inputs, **extra}, prefer="respond-async")
    assert response.status_code == 201
    return job_id_of(response)


def test_the_ogc_builder_is_registered():
    assert notifications._builders["ogc"] is build_payload


def test_success_payload_is_the_results_document_even_for_raw_requests(api):
    job = _job(api, {"string_input": "teststring", "array_input": [4, 5]}, response="raw")
    run_execute(job)
    result, values = run_outputs(principal=DEMO, run_id=job)
    doc = assert_valid("results.yaml", build_payload(result, values, "success"))
    assert doc == {"string_input": "teststring", "array_input": [4, 5]}


def test_success_payload_links_outputs_sent_by_reference(api):
    job = _job(api, {"string_input": "x"}, outputs={"string_input": {"transmissionMode": "reference"}})
    run_execute(job)
    result, values = run_outputs(principal=DEMO, run_id=job)
    doc = assert_valid("results.yaml", build_payload(result, values, "success"))
    assert "/artifacts/" in doc["string_input"]["href"] and doc["string_input"]["type"] == "text/plain; charset=utf-8"


def test_failed_payload_is_an_exception_document(api, settings):
    settings.HONUA = {**settings.HONUA, "BASE_URL": "https://honua.example"}
    job = _job(api, {"string_input": "x", "pause": 30})
    api.delete(f"jobs/{job}")  # a dismissed job notifies its failedUri
    doc = assert_valid("exception.yaml", build_payload(run_get(principal=DEMO, run_id=job), {}, "failed"))
    assert doc["type"] == EXC + "result-not-available"
    assert doc["instance"] == f"https://honua.example/ogcapi/jobs/{job}" and doc["jobID"] == job


def test_in_progress_payload_is_status_info(api):
    job = _job(api, {"string_input": "x"})
    doc = assert_valid("statusInfo.yaml", build_payload(run_get(principal=DEMO, run_id=job), {}, "in_progress"))
    assert doc["jobID"] == job and doc["status"] == "accepted"


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        _Receiver.received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_subscriber_receives_the_results_document(api, settings):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"]}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    _Receiver.received = []
    try:
        job = _job(api, {"string_input": "teststring"},
                   subscriber={"successUri": f"{base}/done", "inProgressUri": f"{base}/running"})
        run_execute(job)
        run_notify(job, "in_progress")
        run_notify(job, "success")
    finally:
        server.shutdown()
    by_path = {r["path"]: r["body"] for r in _Receiver.received}
    assert by_path["/done"] == {"string_input": "teststring"}
    assert_valid("statusInfo.yaml", by_path["/running"])
    assert run_get(principal=DEMO, run_id=job).status is RunStatus.SUCCEEDED
