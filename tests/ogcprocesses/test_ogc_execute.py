"""POST /processes/{id}/execution: every row of the response table (CHECKLIST §6.3), execution
mode negotiation, input forms, and every way a request is refused without creating a run."""

from __future__ import annotations

import base64
import json

import pytest

from controlplane.exceptions import QuotaExceeded
from controlplane.models import ProcessDefinition, ProcessRun
from controlplane.services.policy import policy_cache_clear
from tests.ogcprocesses.support import (
    API,
    EXC,
    RAW,
    body,
    check,
    job_id_of,
    links_header,
    multipart,
    run_status,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]

OCTETS = b"\x89PNG\x00\x01binary\xff"
B64 = base64.b64encode(OCTETS).decode()
ALL_INPUTS = {
    "string_input": "teststring",
    "double_input": 3.25,
    "array_input": [1, 2, 3],
    "bbox_input": {"bbox": [51.9, 7, 52, 7.1], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
    "object_input": {"value": {"a": [1, 2], "b": "teststring"}},
    "binary_input": {"value": B64, "format": {"encoding": "base64"}},
}
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


@pytest.fixture
def define():
    """Add a process to the catalog (handler echo on the inprocess tier)."""

    def make(process_id, inputs, outputs=None, modes=("sync", "async"), limits=None):
        doc = {
            "id": process_id, "version": "1.0.0", "title": process_id.title(), "modes": list(modes),
            "tiers": ["inprocess"], "handlers": {"inprocess": "echo"}, "inputs": inputs,
            "outputs": outputs if outputs is not None else [i for i in inputs if i["name"] != "pause"],
        }
        ProcessDefinition.objects.create(
            process_id=process_id, version="1.0.0", revision=1, is_current=True, spec=doc,
            spec_sha256="0" * 64, title=doc["title"], tier_order=["inprocess"], resource_class="cpu_burst",
            default_mode=modes[0], limits=limits or {},
        )
        policy_cache_clear()  # definitions are cached for a couple of seconds
        return process_id

    return make


def _runs() -> int:
    return ProcessRun.objects.count()


# --- sync: the response table -------------------------------------------------------------------


def test_sync_raw_one_output_is_the_value_itself_with_a_monitor_link(api, client):
    response = api.execute({
        "inputs": ALL_INPUTS, "outputs": {"string_input": {"transmissionMode": "value"}}, "response": "raw",
    }, schema=RAW)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"teststring"
    monitor = links_header(response)[0]
    assert response["Link"].startswith("<http://testserver/ogcapi/jobs/") and "rel=monitor" in response["Link"]
    status = body(api.get(monitor["href"].removeprefix("http://testserver" + API)))
    assert status["status"] == "successful" and status["progress"] == 100


def test_sync_raw_single_json_and_binary_outputs(api):
    number = api.execute({"inputs": ALL_INPUTS, "outputs": {"double_input": {}}}, schema=RAW)
    assert number["Content-Type"] == "application/json" and json.loads(number.content) == 3.25
    array = api.execute({"inputs": ALL_INPUTS, "outputs": {"array_input": {}}}, schema=RAW)
    assert json.loads(array.content) == [1, 2, 3]
    box = api.execute({"inputs": ALL_INPUTS, "outputs": {"bbox_input": {}}}, schema=RAW)
    assert json.loads(box.content) == ALL_INPUTS["bbox_input"]
    obj = api.execute({"inputs": ALL_INPUTS, "outputs": {"object_input": {}}}, schema=RAW)
    assert json.loads(obj.content) == {"a": [1, 2], "b": "teststring"}
    binary = api.execute({"inputs": ALL_INPUTS, "outputs": {"binary_input": {}}}, schema=RAW)
    assert binary["Content-Type"] == "application/octet-stream" and binary.content == OCTETS


def test_sync_raw_several_outputs_are_multipart_related(api):
    response = api.execute({"inputs": ALL_INPUTS}, schema=RAW)  # no outputs: every output
    assert response.status_code == 200
    parts = multipart(response)
    assert list(parts) == ["string_input", "double_input", "array_input", "bbox_input", "object_input",
                           "binary_input"]
    assert parts["string_input"][:2] == ("text/plain", b"teststring")
    assert json.loads(parts["array_input"][1]) == [1, 2, 3]
    assert parts["binary_input"][:2] == ("application/octet-stream", OCTETS)
    assert 'type="text/plain"' in response["Content-Type"]


def test_sync_raw_multi_returns_what_was_produced(api):
    response = api.execute({"inputs": {"string_input": "teststring"}}, schema=RAW)
    assert list(multipart(response)) == ["string_input"]


def test_sync_document(api):
    response = api.execute({"inputs": ALL_INPUTS, "response": "document"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    doc = body(response)
    assert doc["string_input"] == "teststring" and doc["double_input"] == 3.25
    assert doc["array_input"] == [1, 2, 3]
    assert doc["bbox_input"] == ALL_INPUTS["bbox_input"]
    assert doc["object_input"] == {"value": {"a": [1, 2], "b": "teststring"}, "mediaType": "application/json"}
    assert doc["binary_input"] == {"value": B64, "mediaType": "application/octet-stream", "encoding": "base64"}
    assert "rel=monitor" in response["Link"]


def test_sync_raw_by_reference_is_204_with_a_link_per_output(api, client):
    response = api.execute({
        "inputs": ALL_INPUTS,
        "outputs": {"string_input": {"transmissionMode": "reference"}, "array_input": {"transmissionMode": "reference"}},
    })
    assert response.status_code == 204 and response.content == b""
    links = links_header(response)
    assert links[0]["rel"] == "monitor"
    by_output = {link["title"]: link for link in links[1:]}
    assert set(by_output) == {"string_input", "array_input"}
    fetched = client.get(by_output["array_input"]["href"])
    assert fetched.status_code == 200 and json.loads(b"".join(fetched.streaming_content)) == [1, 2, 3]


def test_sync_raw_mixed_is_multipart_with_empty_reference_parts(api, client):
    response = api.execute({
        "inputs": ALL_INPUTS,
        "outputs": {"string_input": {"transmissionMode": "value"}, "double_input": {"transmissionMode": "reference"}},
    }, schema=RAW)
    parts = multipart(response)
    assert parts["string_input"][1] == b"teststring"
    ctype, content, headers = parts["double_input"]
    assert content == b"" and headers["Content-Location"].startswith("http://testserver/artifacts/")
    assert json.loads(b"".join(client.get(headers["Content-Location"]).streaming_content)) == 3.25


def test_sync_document_with_references(api, client):
    response = api.execute({
        "inputs": ALL_INPUTS, "response": "document",
        "outputs": {"object_input": {"transmissionMode": "reference"}, "string_input": {}},
    })
    doc = body(response)
    assert set(doc) == {"object_input", "string_input"}
    assert doc["object_input"]["type"] == "application/json"
    fetched = client.get(doc["object_input"]["href"])
    assert json.loads(b"".join(fetched.streaming_content)) == {"a": [1, 2], "b": "teststring"}


# --- mode negotiation ---------------------------------------------------------------------------


def test_respond_async_creates_a_job(api, client):
    response = api.execute({"inputs": {"string_input": "teststring"}}, prefer="respond-async")
    assert response.status_code == 201
    assert response["Preference-Applied"] == "respond-async"
    status = body(response)
    assert response["Location"] == f"http://testserver/ogcapi/jobs/{status['jobID']}"
    assert status["status"] == "accepted" and status["processID"] == "echo"
    again = check(client.get(response["Location"], headers={"Accept": "application/json"}), "statusInfo.yaml")
    assert body(again)["jobID"] == status["jobID"]


def test_no_prefer_runs_the_catalog_default(api, define):
    assert api.execute({"inputs": {"string_input": "x"}}, schema=RAW).status_code == 200  # echo: sync
    define("later", [{"name": "s", "type": "string"}], modes=("async",))
    assert api.execute({"inputs": {"s": "x"}}, process="later").status_code == 201
    define("now", [{"name": "s", "type": "string"}], modes=("sync",))
    response = api.execute({"inputs": {"s": "x"}}, process="now", prefer="respond-async", schema=RAW)
    assert response.status_code == 200 and "Preference-Applied" not in response  # sync-only stays sync


def test_respond_sync_as_owslib_sends_it(api):
    response = api.execute({"inputs": {"string_input": "x"}}, prefer="respond-sync", schema=RAW)
    assert response.status_code == 200


def test_a_sync_run_past_the_deadline_answers_like_async(api, settings):
    settings.HONUA = {**settings.HONUA, "SYNC_DEADLINE_SECONDS": 0.3}
    response = api.execute({"inputs": {"string_input": "slow", "pause": 1.5}})
    assert response.status_code == 201 and "Preference-Applied" not in response
    job = job_id_of(response)
    assert body(response)["status"] in ("running", "accepted")
    wait_for(lambda: run_status(job).is_terminal)
    assert body(api.get(f"jobs/{job}"))["status"] == "successful"
    assert check(api.get(f"jobs/{job}/results"), RAW).content.count(b"slow") == 1


# --- inputs -------------------------------------------------------------------------------------


def test_geometry_feature_collection_and_units_round_trip(api, define):
    define("geo", [
        {"name": "geometry", "type": "geometry", "required": False},
        {"name": "features", "type": "feature_collection", "required": False},
        {"name": "distance", "type": "linear_unit", "required": False},
        {"name": "crs", "type": "spatial_reference", "required": False},
        {"name": "when", "type": "datetime", "required": False},
        {"name": "flag", "type": "boolean", "required": False},
    ])
    feature = {"type": "Feature", "geometry": SQUARE, "properties": {"name": "a"}}
    inputs = {
        "geometry": {"value": SQUARE, "mediaType": "application/geo+json"},
        "features": {"type": "FeatureCollection", "features": [feature],
                     "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}},
        "distance": {"value": 100, "unit": "meter"},
        "crs": "http://www.opengis.net/def/crs/EPSG/0/2193",
        "when": "2026-01-01T00:00:00Z",
        "flag": True,
    }
    doc = body(api.execute({"inputs": inputs, "response": "document"}, process="geo"))
    assert doc["geometry"] == {"value": SQUARE, "mediaType": "application/geo+json"}
    assert doc["features"]["value"]["features"] == [feature]
    assert doc["features"]["value"]["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::3857"
    assert doc["distance"] == {"value": {"value": 100, "unit": "meter"}, "mediaType": "application/json"}
    assert doc["crs"] == "http://www.opengis.net/def/crs/EPSG/0/2193"
    assert (doc["when"], doc["flag"]) == ("2026-01-01T00:00:00Z", True)
    run = ProcessRun.objects.get()
    assert run.inputs["features"]["srid"] == 3857 and run.inputs["geometry"]["srid"] == 4326
    raw = api.execute({"inputs": inputs, "outputs": {"geometry": {}}}, process="geo", schema=RAW)
    assert raw["Content-Type"] == "application/geo+json" and json.loads(raw.content) == SQUARE


def test_href_input_is_kept_as_a_reference_for_the_control_plane(api):
    href = "https://example.org/data/testgeotiff.tiff"
    doc = body(api.execute({
        "inputs": {"string_input": "x", "binary_input": {"href": href, "type": "image/tiff"}},
        "response": "document",
    }))
    assert doc["binary_input"] == {"href": href, "type": "image/tiff"}
    assert ProcessRun.objects.get().inputs["binary_input"] == {"href": href, "media_type": "image/tiff"}


def test_subscriber_is_recorded(api):
    api.execute({
        "inputs": {"string_input": "x"},
        "subscriber": {"successUri": "https://client.example/ok", "failedUri": "https://client.example/ko"},
    }, prefer="respond-async")
    assert ProcessRun.objects.get().subscriber == {
        "success_uri": "https://client.example/ok", "failed_uri": "https://client.example/ko",
    }


# --- refusals: 400 / 404 / 413 / 429, and nothing is created --------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{not json", "invalid-request"),
        ("[1, 2]", "invalid-request"),
        ({"invalid-execute-request": "true)"}, "invalid-request"),
        ({"inputs": {"string_input": "x", "binary_input": {"type": "wrong/type_42"}}}, "invalid-parameter-value"),
        ({"inputs": {"string_input": "x", "surprise": 1}}, "unknown-parameter"),
        ({"inputs": {"double_input": 1}}, "missing-parameter"),
        ({"inputs": {"string_input": 5}}, "invalid-parameter-value"),
        ({"inputs": {"string_input": "x", "array_input": ["a"]}}, "invalid-parameter-value"),
        ({"inputs": {"string_input": "x", "pause": 600}}, "invalid-parameter-value"),
        ({"inputs": {"string_input": "x", "bbox_input": {"bbox": [1, 2, 3]}}}, "invalid-parameter-value"),
        ({"inputs": {"string_input": "x"}, "outputs": {"nope": {}}}, "invalid-parameter-value"),
        ({"inputs": {"string_input": "x"}, "response": "maybe"}, "invalid-parameter-value"),
    ],
)
def test_invalid_requests_are_400_and_create_nothing(api, payload, code):
    response = api.execute(payload)
    assert response.status_code == 400
    assert body(response)["type"] == EXC + code
    assert _runs() == 0


def test_invalid_geometry_is_400(api, define):
    define("geo", [{"name": "geometry", "type": "geometry", "geometry_types": ["Polygon"]}])
    open_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
    response = api.execute({"inputs": {"geometry": open_ring}}, process="geo")
    assert response.status_code == 400 and body(response)["type"] == EXC + "invalid-geometry"
    point = api.execute({"inputs": {"geometry": {"type": "Point", "coordinates": [0, 0]}}}, process="geo")
    assert point.status_code == 400 and body(point)["type"] == EXC + "invalid-geometry"
    assert _runs() == 0


def test_oversize_payloads_are_413(api, settings, define):
    define("tiny", [{"name": "s", "type": "string"}], limits={"max_bytes": 1000})
    response = api.execute({"inputs": {"s": "x" * 2000}}, process="tiny")
    assert response.status_code == 413 and body(response)["type"] == EXC + "payload-too-large"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5000
    response = api.execute({"inputs": {"string_input": "x" * 6000}})
    assert response.status_code == 413 and body(response)["type"] == EXC + "payload-too-large"
    assert _runs() == 0


def test_quota_refusal_is_429_with_retry_after(api, monkeypatch):
    from ogcprocesses import views

    def refuse(request):
        raise QuotaExceeded("3 runs per minute", retry_after=42)

    monkeypatch.setattr(views, "run_submit", refuse)
    response = api.execute({"inputs": {"string_input": "x"}})
    assert response.status_code == 429 and response["Retry-After"] == "42"
    assert body(response)["type"] == EXC + "quota-exceeded"


def test_a_failed_sync_run_answers_with_its_exception(api, define):
    define("slow", [{"name": "pause", "type": "number"}], outputs=[{"name": "x", "type": "string"}],
           limits={"max_runtime_seconds": 0.2})
    response = api.execute({"inputs": {"pause": 2}}, process="slow")
    assert response.status_code == 500
    doc = body(response)
    assert doc["type"] == EXC + "timed-out" and doc["instance"].startswith("http://testserver/ogcapi/jobs/")
    job = doc["instance"].rsplit("/", 1)[-1]
    assert body(api.get(f"jobs/{job}"))["status"] == "failed"
    again = api.get(f"jobs/{job}/results")
    assert again.status_code == 500 and body(again)["type"] == EXC + "timed-out"


def test_content_type_is_not_required(client):
    response = client.post(API + "processes/echo/execution", data=json.dumps({"inputs": {"string_input": "y"}, "outputs": {"string_input": {}}}),
                           content_type="text/plain")
    assert response.status_code == 200 and response.content == b"y"


def test_traceparent_is_carried_to_the_run(client):
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = client.post(API + "processes/echo/execution", data=json.dumps({"inputs": {"string_input": "t"}}),
                           content_type="application/json", headers={"traceparent": trace, "Prefer": "respond-async"})
    assert check(response, "statusInfo.yaml").status_code == 201
    assert ProcessRun.objects.get().trace_parent == trace
