"""The assertions of the official ETS (ets-ogcapi-processes10, CHECKLIST §10), replayed with
the requests it sends against the echo process."""

from __future__ import annotations

import base64

import pytest

from controlplane.tasks import run_execute
from ogcprocesses import translate
from tests.ogcprocesses.support import API, EXC, RAW, body, check, job_id_of, multipart, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]

# What the ETS builds from the echo description: "teststring" for plain strings, an EPSG
# URN bbox, {"value": "teststring"} for objects, every output by value.
ETS_INPUTS = {
    "string_input": "teststring",
    "bbox_input": {"crs": "urn:ogc:def:crs:EPSG:6.6:4326", "bbox": [345345345, 345345345, 345345345, 345345345]},
    "object_input": {"value": "teststring"},
}
ETS_OUTPUTS = {name: {"transmissionMode": "value"} for name in
               ("string_input", "double_input", "array_input", "bbox_input", "object_input", "binary_input")}


def _execute(api, prefer=None, **extra):
    payload = {"inputs": dict(ETS_INPUTS), "outputs": dict(ETS_OUTPUTS)}
    payload.update(extra)
    return api.execute(payload, prefer=prefer, schema=None if payload.get("response") == "document" else RAW)


def test_landing_page_conformance_process_list(api):
    links = {link["rel"] for link in body(api.get(""))["links"]}
    assert {"service-desc", "service-doc"} & links
    assert {translate.REL_CONFORMANCE, translate.REL_PROCESSES} <= links
    assert translate.CONF + "core" in body(api.get("conformance"))["conformsTo"]
    processes = body(api.get("processes"))
    assert processes["processes"] and isinstance(processes["links"], list)
    assert api.get("processes?limit=10").status_code == 200
    assert len(body(api.get("processes?limit=1"))["processes"]) == 1


def test_process_description_and_unknown_process(api):
    doc = body(api.get("processes/echo"))
    assert all("schema" in item for item in [*doc["inputs"].values(), *doc["outputs"].values()])
    missing = api.get("processes/does-not-exist")
    assert missing.status_code == 404 and body(missing)["type"] == EXC + "no-such-process"


def test_execution_modes(api):
    assert _execute(api).status_code == 200  # no Prefer, either mode -> sync
    assert _execute(api, prefer="respond-async ").status_code in (200, 201)  # trailing space, as sent
    assert api.execute({"inputs": dict(ETS_INPUTS)}, schema=RAW).status_code in (200, 201)  # no outputs


def test_input_kinds(api):
    with_array = {**ETS_INPUTS, "array_input": [1, 2, 3]}
    with_bbox = {**ETS_INPUTS, "bbox_input": {"bbox": [51.9, 7, 52, 7.1], "crs": translate.CRS84}}
    binary = base64.b64encode(b"II*\x00 a tiny tiff").decode()
    with_binary = {**ETS_INPUTS, "binary_input": {"value": binary, "format": {"encoding": "base64"}}}
    for inputs in (with_array, with_bbox, with_binary, ETS_INPUTS):
        response = api.execute({"inputs": inputs, "outputs": ETS_OUTPUTS}, schema=RAW)
        assert response.status_code in (200, 201), inputs


def test_response_forms(api):
    assert _execute(api, response="document").status_code in (200, 201)
    assert _execute(api, response="raw").status_code in (200, 201)
    one = api.execute({"inputs": dict(ETS_INPUTS), "outputs": {"string_input": {"transmissionMode": "value"}},
                       "response": "raw"}, schema=RAW)
    assert one.status_code == 200 and "teststring" in one.content.decode()
    multi = _execute(api, response="raw")
    assert multi["Content-Type"].startswith("multipart/related")
    assert any(b"teststring" in content for _, content, _ in multipart(multi).values())


def test_invalid_input_and_invalid_body(api):
    wrong = api.execute({"inputs": {**ETS_INPUTS, "binary_input": {"type": "wrong/type_0b1d"}},
                         "outputs": ETS_OUTPUTS})
    assert wrong.status_code in (400, 500) and wrong["Content-Type"] == "application/json"
    assert api.execute({"invalid-execute-request": "true)"}).status_code > 200


def test_async_job_status_and_results_link(api, client):
    response = _execute(api, prefer="respond-async")
    assert response.status_code == 201 and response["Location"]
    status = check(client.get(response["Location"], headers={"Accept": "application/json"}), "statusInfo.yaml")
    assert status.status_code == 200
    run_execute(job_id_of(response))
    doc = check(client.get(response["Location"], headers={"Accept": "application/json"}), "statusInfo.yaml").json()
    results = next(link for link in doc["links"] if link["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/results")
    assert results["href"] and results["type"]
    got = check(client.get(results["href"], headers={"Accept": results["type"]}), RAW)
    assert got.status_code == 200 and "teststring" in got.content.decode()


def test_result_not_ready_while_pausing(api, worker):
    response = api.execute({"inputs": {"string_input": "teststring", "pause": 5},
                            "outputs": {"string_input": {"transmissionMode": "value"}}, "response": "raw"},
                           prefer="respond-async")
    assert response.status_code == 201
    job = job_id_of(response)
    worker(job)
    early = api.get(f"jobs/{job}/results")
    assert early.status_code == 404
    assert body(early)["type"] == "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"
    api.delete(f"jobs/{job}")  # don't keep the worker busy for the whole pause
    wait_for(lambda: body(api.get(f"jobs/{job}"))["status"] == "dismissed")


def test_invalid_job_ids(api):
    for path in ("jobs/invalid-job-0f6e3c1e", "jobs/invalid-job-0f6e3c1e/results"):
        response = api.get(path)
        assert response.status_code == 404 and body(response)["type"] == EXC + "no-such-job"


def test_job_list_is_non_empty_after_executions(api):
    _execute(api)
    doc = check(api.client.get(API + "jobs", headers={"Accept": "application/json"}), "jobList.yaml").json()
    assert doc["jobs"]
