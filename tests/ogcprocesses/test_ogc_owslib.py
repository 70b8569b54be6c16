"""Interoperability: OWSLib's OGC API - Processes client against a live Honua on loopback."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

from controlplane.tasks import run_execute
from tests.ogcschema import assert_valid

processes_module = pytest.importorskip("owslib.ogcapi.processes")

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]


@pytest.fixture
def ogcapi_url(live_server) -> str:
    return live_server.url + "/ogcapi/"


def test_status_line_is_http_1_1(ogcapi_url):
    parts = urlsplit(ogcapi_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    assert (response.status, response.version) == (200, 11)
    conn.close()


def test_owslib_lists_describes_and_executes(ogcapi_url):
    client = processes_module.Processes(ogcapi_url, timeout=30)
    assert_valid("landingPage.yaml", client.response)
    assert_valid("confClasses.yaml", client.conformance())
    assert client.api()["openapi"].startswith("3.0")
    ids = [p["id"] for p in client._request(path="processes", kwargs={"limit": 10000})["processes"]]
    assert "echo" in ids
    description = assert_valid("process.yaml", client.process("echo"))
    assert "string_input" in description["inputs"]
    results = client.execute("echo", inputs={"string_input": "owslib", "array_input": [1, 2]},
                             response="document")
    assert assert_valid("results.yaml", results) == {"string_input": "owslib", "array_input": [1, 2]}
    status = client.execute("echo", inputs={"string_input": "later"}, async_=True)
    assert_valid("statusInfo.yaml", status)
    assert status["status"] == "accepted"
    assert client.response_headers["Location"].endswith("/jobs/" + status["jobID"])
    run_execute(status["jobID"])
    assert client._request(path=f"jobs/{status['jobID']}")["status"] == "successful"
    assert client._request(path=f"jobs/{status['jobID']}/results") == {"string_input": "later"}
