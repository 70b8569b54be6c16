"""translate.py without a database: wire <-> contract for every parameter type and status."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from controlplane import exceptions as errors
from controlplane.contracts import (
    ExecutionMode,
    ExecutionResult,
    ParamSpec,
    ParamType,
    Principal,
    ProcessSpec,
    ResourceClass,
    RunMessage,
    RunStatus,
    Surface,
    Tier,
)
from controlplane.services.layerrefs import collection_in_url
from ogcprocesses import translate
from ogcprocesses.errors import exception_response
from tests.ogcschema import assert_valid
from tests.ogcschema import errors as schema_errors

URLS = translate.Urls(root="http://example.org/ogcapi/")
PRINCIPAL = Principal(tenant="demo")
NOW = "2026-01-02T03:04:05.000006+00:00"


def _href(artifact_id: str) -> str:
    return f"http://example.org/artifacts/{artifact_id}?sig=x"


def _spec(*inputs: ParamSpec, outputs: tuple[ParamSpec, ...] = (), modes=("sync", "async")) -> ProcessSpec:
    return ProcessSpec(
        id="p", version="1.0.0", title="P", description="A process", keywords=("k",),
        inputs=tuple(inputs), outputs=outputs or (ParamSpec("out", ParamType.STRING),),
        modes=tuple(ExecutionMode(m) for m in modes), default_mode=ExecutionMode(modes[0]),
        tiers=(Tier.INPROCESS,), resource_class=ResourceClass.CPU_BURST,
    )


EVERY_TYPE = (
    ParamSpec("s", ParamType.STRING, title="S", description="a string", choices=("a", "b"), default="a"),
    ParamSpec("i", ParamType.INTEGER, minimum=0, maximum=9),
    ParamSpec("n", ParamType.NUMBER, required=False),
    ParamSpec("b", ParamType.BOOLEAN, required=False),
    ParamSpec("t", ParamType.DATETIME, required=False),
    ParamSpec("d", ParamType.LINEAR_UNIT, default={"value": 100, "unit": "meter"}),
    ParamSpec("g", ParamType.GEOMETRY, geometry_types=("Polygon",)),
    ParamSpec("fc", ParamType.FEATURE_COLLECTION),
    ParamSpec("box", ParamType.BBOX, required=False),
    ParamSpec("sr", ParamType.SPATIAL_REFERENCE, required=False),
    ParamSpec("f", ParamType.FILE, media_types=("text/csv", "application/zip"), required=False),
    ParamSpec("r", ParamType.RASTER, required=False),
    ParamSpec("o", ParamType.OBJECT, required=False),
    ParamSpec("many", ParamType.INTEGER, multi=True, max_items=5, required=False),
)


def _result(status=RunStatus.SUCCEEDED, *, request=None, error=None, links=None, dismissed=False, outputs=None):
    done = status.is_terminal
    return ExecutionResult(
        run_id=uuid.UUID("00000000-0000-4000-8000-000000000001"), process_id="echo", status=status,
        mode=ExecutionMode.SYNC, surface=Surface.OGC, progress=100 if done else 10,
        messages=(RunMessage(type="info", text="Submitted.", time=NOW),), created=NOW,
        started=NOW if status is not RunStatus.QUEUED else None, finished=NOW if done else None,
        updated=NOW, outputs=outputs, output_links=links or {}, error=error, request=request or {},
        dismissed=dismissed,
    )


def _echo_request(**extra):
    rows = [
        ["string_input", "string", False, translate.TEXT],
        ["double_input", "number", False, "application/json"],
        ["array_input", "integer", True, "application/json"],
        ["bbox_input", "bbox", False, "application/json"],
        ["object_input", "object", False, "application/json"],
        ["binary_input", "file", False, "application/octet-stream"],
    ]
    return {"response": "raw", "outputs": {}, "options": {"ogc_outputs": rows}, **extra}


# --- descriptions -----------------------------------------------------------------------------


def test_every_parameter_type_has_a_schema_valid_per_schema_yaml():
    spec = _spec(*EVERY_TYPE, outputs=EVERY_TYPE)
    doc = assert_valid("process.yaml", translate.process_description(spec, URLS))
    for section in ("inputs", "outputs"):
        for name, item in doc[section].items():
            assert schema_errors("schema.yaml", item["schema"]) == [], (section, name)
    inputs = doc["inputs"]
    assert inputs["s"]["schema"] == {"type": "string", "enum": ["a", "b"], "default": "a"}
    assert inputs["s"]["minOccurs"] == 0 and inputs["i"]["minOccurs"] == 1
    assert inputs["i"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 9}
    assert inputs["t"]["schema"] == {"type": "string", "format": "date-time"}
    assert inputs["d"]["schema"]["properties"]["unit"]["enum"][0] == "meter"
    # A geometry or feature collection is given inline (GeoJSON) or as a layerReference.
    assert inputs["g"]["schema"]["oneOf"][0]["allOf"][0] == {"format": "geojson-geometry"}
    assert inputs["fc"]["schema"]["oneOf"][0]["allOf"][0] == {"format": "geojson-feature-collection"}
    for name in ("g", "fc"):
        assert inputs[name]["schema"]["oneOf"][1]["required"] == ["layerReference"]
    assert inputs["box"]["schema"]["allOf"][0] == {"format": "ogc-bbox"}
    # Mixed media types: oneOf, the first branch is the default format.
    assert [b["contentMediaType"] for b in inputs["f"]["schema"]["oneOf"]] == ["text/csv", "application/zip"]
    assert inputs["r"]["schema"]["contentMediaType"] == translate.GEOTIFF
    assert inputs["many"]["schema"] == {"type": "array", "items": {"type": "integer"}, "maxItems": 5}
    assert doc["jobControlOptions"] == ["sync-execute", "async-execute", "dismiss"]
    assert doc["outputTransmission"] == ["value", "reference"]
    rels = {link["rel"]: link["href"] for link in doc["links"]}
    assert rels[translate.REL_EXECUTE] == "http://example.org/ogcapi/processes/p/execution"
    assert rels["self"] == "http://example.org/ogcapi/processes/p"


def test_job_control_options_follow_the_modes():
    assert translate.process_summary(_spec(modes=("async",)), URLS)["jobControlOptions"] == [
        "async-execute", "dismiss",
    ]


def test_process_list_pages_with_offset_links():
    specs = [_spec() for _ in range(5)]
    doc = assert_valid("processList.yaml", translate.process_list(specs, URLS, {"limit": "2", "offset": "2"}))
    assert len(doc["processes"]) == 2
    rels = {link["rel"]: link["href"] for link in doc["links"]}
    assert rels["next"].endswith("limit=2&offset=4") and rels["prev"].endswith("limit=2&offset=0")
    assert rels["alternate"].endswith("f=html")
    last = translate.process_list(specs, URLS, {"limit": "2", "offset": "4"})
    assert "next" not in {link["rel"] for link in last["links"]}


@pytest.mark.parametrize("value", ["0", "10001", "x", "-1"])
def test_limit_out_of_range_is_400(value):
    with pytest.raises(errors.InvalidParameterValue):
        translate.page_params({"limit": value})


# --- execute requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crs", "srid"),
    [
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", 4326),
        ("http://www.opengis.net/def/crs/OGC/0/CRS84h", 4979),
        ("http://www.opengis.net/def/crs/EPSG/0/3857", 3857),
        ("https://www.opengis.net/def/crs/EPSG/9.9.1/25832", 25832),
        ("urn:ogc:def:crs:EPSG:6.6:4326", 4326),  # what the ETS sends
        ("urn:ogc:def:crs:EPSG::2193", 2193),
        ("EPSG:27700", 27700),
        (3857, 3857),
    ],
)
def test_crs_forms(crs, srid):
    assert translate.crs_srid(crs, "x") == srid


@pytest.mark.parametrize("crs", ["EPSG:abc", "http://example.org/crs", "", True])
def test_unknown_crs_is_invalid(crs):
    with pytest.raises(errors.InvalidParameterValue):
        translate.crs_srid(crs, "x")


@pytest.mark.parametrize(
    ("header", "mode", "asked"),
    [
        ("respond-async", ExecutionMode.ASYNC, True),
        ("respond-async ", ExecutionMode.ASYNC, True),  # the ETS sends a trailing space
        ("wait=10, respond-async", ExecutionMode.ASYNC, True),
        ("respond-sync", ExecutionMode.SYNC, False),  # OWSLib
        ("return=minimal", None, False),
        ("", None, False),
    ],
)
def test_prefer_header(header, mode, asked):
    assert translate.preferred_mode(header) == (mode, asked)


def test_trace_parent_is_kept_only_when_well_formed():
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert translate.trace_parent(good) == good
    assert translate.trace_parent("x" * 300) is None and translate.trace_parent(None) is None


def _translate(spec, body, prefer=""):
    return translate.execute_request(spec, body, principal=PRINCIPAL, prefer=prefer, request_bytes=7)


def test_inputs_of_every_form_become_internal_values():
    spec = _spec(*EVERY_TYPE)
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    feature = {"type": "Feature", "geometry": square, "properties": {"a": 1}}
    csv = base64.b64encode(b"a,b\n1,2\n").decode()
    sub = _translate(spec, {
        "inputs": {
            "s": {"value": "b", "mediaType": "text/plain"},
            "i": [3],  # an array of one for a single value
            "n": 2.5,
            "t": "2026-01-01T00:00:00Z",
            "d": {"value": 2, "unit": "km"},
            "g": {"value": feature, "mediaType": "application/geo+json"},
            "fc": {"type": "FeatureCollection", "features": [feature],
                   "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}},
            "box": {"bbox": [1, 2, 3, 4], "crs": "http://www.opengis.net/def/crs/EPSG/0/3857"},
            "sr": "http://www.opengis.net/def/crs/EPSG/0/2193",
            "f": {"value": csv, "format": {"mediaType": "text/csv", "encoding": "base64"}},
            "r": {"href": "https://example.org/a.tif", "type": "image/tiff"},
            "o": {"value": {"nested": [1, 2]}},
            "many": 4,
        },
        "outputs": {"out": {"transmissionMode": "reference"}},
        "response": "document",
        "subscriber": {"successUri": "https://client.example/done", "failedUri": "https://client.example/f"},
    }, prefer="respond-async")
    request = sub.request
    assert sub.prefer_async and request.mode is ExecutionMode.ASYNC
    assert request.surface is Surface.OGC and request.request_bytes == 7
    assert request.inputs == {
        "s": "b",
        "i": 3,
        "n": 2.5,
        "t": "2026-01-01T00:00:00Z",
        "d": {"value": 2, "unit": "kilometer"},
        "g": {**square, "srid": 4326},
        "fc": {"type": "FeatureCollection", "features": [feature], "srid": 3857},
        "box": {"bbox": [1, 2, 3, 4], "srid": 3857},
        "sr": {"srid": 2193},
        "f": {"value": csv, "media_type": "text/csv", "encoding": "base64"},
        "r": {"href": "https://example.org/a.tif", "media_type": "image/tiff"},
        "o": {"nested": [1, 2]},
        "many": [4],
    }
    assert request.outputs["out"].transmission == "reference"
    assert request.response == "document"
    assert request.subscriber.success_uri == "https://client.example/done"
    assert request.options["ogc_outputs"] == [["out", "string", False, translate.TEXT]]


def test_plain_geojson_and_numbers_are_accepted_for_geo_and_length_inputs():
    spec = _spec(*EVERY_TYPE)
    point = {"type": "Point", "coordinates": [1, 2]}
    inputs = _translate(spec, {"inputs": {"g": point, "fc": point, "d": 50}}).request.inputs
    assert inputs["g"] == {**point, "srid": 4326}
    assert inputs["fc"]["features"][0]["geometry"] == point and inputs["fc"]["srid"] == 4326
    assert inputs["d"] == {"value": 50, "unit": "meter"}


def test_qualified_object_holding_a_string_is_unwrapped():
    spec = _spec(ParamSpec("o", ParamType.OBJECT))
    assert _translate(spec, {"inputs": {"o": {"value": "teststring"}}}).request.inputs == {"o": "teststring"}


@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ({"nope": 1}, errors.UnknownParameter),
        ({"i": [1, 2]}, errors.InvalidParameterValue),
        ({"s": {"href": "https://example.org/x"}}, errors.InvalidParameterValue),  # not by reference
        ({"r": {"href": "file:///etc/passwd"}}, errors.InvalidParameterValue),
        ({"f": {"type": "wrong/type_123"}}, errors.InvalidParameterValue),  # the ETS's invalid input
        ({"f": {"value": "***", "mediaType": "text/csv"}}, errors.InvalidParameterValue),
        ({"f": {"value": "YQ==", "mediaType": "image/png"}}, errors.InvalidParameterValue),
        ({"box": {"bbox": [1, 2, 3, 4], "crs": "urn:nonsense"}}, errors.InvalidParameterValue),
    ],
)
def test_invalid_inputs(inputs, error):
    with pytest.raises(error):
        _translate(_spec(*EVERY_TYPE), {"inputs": inputs})


@pytest.mark.parametrize(
    "body",
    [
        ["not", "an", "object"],
        {"invalid-execute-request": "true)"},
        {"inputs": ["x"]},
        {"response": "table"},
        {"outputs": {"nope": {}}},
        {"outputs": {"out": {"transmissionMode": "carrier-pigeon"}}},
        {"outputs": {"out": {"format": {"mediaType": "image/png"}}}},
        {"subscriber": {"successUri": "ftp://example.org/x"}},
        {"subscriber": "https://example.org"},
    ],
)
def test_bodies_that_are_not_execute_requests(body):
    with pytest.raises(errors.InvalidRequest):
        _translate(_spec(ParamSpec("s", ParamType.STRING, required=False)), body)


# --- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ogc"),
    [
        (RunStatus.QUEUED, "accepted"),
        (RunStatus.WAITING, "accepted"),
        (RunStatus.RUNNING, "running"),
        (RunStatus.CANCELLING, "running"),
        (RunStatus.SUCCEEDED, "successful"),
        (RunStatus.FAILED, "failed"),
        (RunStatus.TIMED_OUT, "failed"),
        (RunStatus.CANCELLED, "dismissed"),
    ],
)
def test_status_mapping(status, ogc):
    error = {"code": "execution-failed", "message": "boom"} if ogc == "failed" else None
    doc = assert_valid("statusInfo.yaml", translate.status_info(_result(status, error=error), URLS))
    assert doc["status"] == ogc and doc["type"] == "process" and doc["processID"] == "echo"
    assert doc["created"].endswith("Z")
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "alternate", "monitor"} <= rels
    assert (translate.REL_RESULTS in rels) == (ogc == "successful")


def test_a_dismissed_run_is_dismissed_whatever_its_status():
    doc = translate.status_info(_result(RunStatus.SUCCEEDED, dismissed=True), URLS)
    assert doc["status"] == "dismissed" and translate.REL_RESULTS not in {x["rel"] for x in doc["links"]}


def test_results_link_type_follows_the_request():
    one = _echo_request(outputs={"string_input": {"transmission": "value", "media_type": None}})
    assert translate.results_media_type(_result(request=one)) == translate.TEXT
    assert translate.results_media_type(_result(request=_echo_request())) == "multipart/related"
    assert translate.results_media_type(_result(request=_echo_request(response="document"))) == "application/json"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ((RunStatus.RUNNING, RunStatus.CANCELLING, RunStatus.SUCCEEDED, RunStatus.FAILED,
               RunStatus.TIMED_OUT), True)),
        ({"status": "accepted"}, ((RunStatus.QUEUED, RunStatus.WAITING), False)),
        ({"status": "successful,failed"}, ((RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT), False)),
        ({"status": "dismissed"}, ((), True)),
        ({"status": "dismissed,successful"}, ((RunStatus.SUCCEEDED,), True)),
    ],
)
def test_job_status_filters(query, expected):
    filters, limit, offset = translate.job_filters(query)
    assert (filters.statuses, filters.dismissed) == expected
    assert (limit, offset) == (10, 0)


def test_job_filters_parse_every_parameter():
    filters, limit, offset = translate.job_filters({
        "type": "process", "processID": "echo,buffer", "datetime": "2026-01-01T00:00:00Z/..",
        "minDuration": "1.5", "maxDuration": "60", "limit": "3", "offset": "6",
    })
    assert filters.surfaces == (Surface.OGC,) and filters.process_ids == ("echo", "buffer")
    assert filters.created_after == datetime(2026, 1, 1, tzinfo=UTC) and filters.created_before is None
    assert (filters.min_duration, filters.max_duration, limit, offset) == (1.5, 60.0, 3, 6)
    day, _, _ = translate.job_filters({"datetime": "2026-03-04"})
    assert day.created_after == datetime(2026, 3, 4, tzinfo=UTC)
    assert day.created_before.date() == day.created_after.date()
    upto, _, _ = translate.job_filters({"datetime": "../2026-03-04T05:06:07+02:00"})
    assert upto.created_after is None and upto.created_before.hour == 5


@pytest.mark.parametrize(
    "query",
    [{"type": "wps"}, {"status": "done"}, {"datetime": "yesterday"}, {"datetime": "2026-02-01/2026-01-01"},
     {"minDuration": "-1"}, {"maxDuration": "soon"}, {"limit": "0"}, {"offset": "-3"}],
)
def test_invalid_job_filters(query):
    with pytest.raises(errors.InvalidParameterValue):
        translate.job_filters(query)


# --- results -----------------------------------------------------------------------------------


ECHOED = {
    "string_input": "teststring",
    "double_input": 3.5,
    "array_input": [1, 2, 3],
    "bbox_input": {"bbox": [1, 2, 3, 4], "srid": 4326},
    "object_input": {"a": 1},
    "binary_input": {"value": base64.b64encode(b"\x00\x01").decode(), "media_type": "application/octet-stream",
                     "encoding": "base64"},
}


def test_results_document_forms():
    wire = translate.results_response(_result(request=_echo_request(response="document")), ECHOED, URLS, _href)
    doc = assert_valid("results.yaml", wire.data)
    assert doc["string_input"] == "teststring" and doc["double_input"] == 3.5 and doc["array_input"] == [1, 2, 3]
    assert doc["bbox_input"] == {"bbox": [1, 2, 3, 4], "crs": translate.CRS84}
    assert doc["object_input"] == {"value": {"a": 1}, "mediaType": "application/json"}
    assert doc["binary_input"]["encoding"] == "base64" and doc["binary_input"]["mediaType"] == "application/octet-stream"


def test_raw_single_output_is_the_value_in_its_media_type():
    request = _echo_request(outputs={"binary_input": {"transmission": "value"}})
    wire = translate.results_response(_result(request=request), ECHOED, URLS, _href)
    assert (wire.status, wire.body, wire.content_type) == (200, b"\x00\x01", "application/octet-stream")


def test_raw_references_are_204_with_link_headers():
    links = {"string_input": {"artifact": "a1", "media_type": "application/json", "transmission": "reference"}}
    request = _echo_request(outputs={"string_input": {"transmission": "reference"}})
    wire = translate.results_response(_result(request=request, links=links), {}, URLS, _href)
    assert wire.status == 204 and wire.body is None
    assert wire.links[0]["href"] == _href("a1") and wire.links[0]["title"] == "string_input"


def test_failed_and_dismissed_runs_have_no_results():
    failed = _result(RunStatus.FAILED, error={"code": "invalid-parameter-value", "message": "bad", "details": []})
    with pytest.raises(errors.InvalidParameterValue) as caught:
        translate.results_response(failed, {}, URLS, _href)
    assert caught.value.status == 400
    timed_out = _result(RunStatus.TIMED_OUT, error={"code": "timed-out", "message": "too slow"})
    exc = translate.error_from_result(timed_out, URLS)
    assert (exc.code, exc.status, exc.extra["instance"]) == ("timed-out", 500, URLS.job(timed_out.run_id))
    with pytest.raises(errors.ResultNotAvailable):
        translate.results_response(_result(RunStatus.SUCCEEDED, dismissed=True), {}, URLS, _href)
    with pytest.raises(errors.ResultNotReady):
        translate.results_response(_result(RunStatus.RUNNING), {}, URLS, _href)


def test_link_header_keeps_monitor_unquoted():
    value = translate.link_header([translate.link("http://x/jobs/1", "monitor", "application/json")])
    assert value == '<http://x/jobs/1>; rel=monitor; type="application/json"'
    value = translate.link_header([translate.link("http://x/r", translate.REL_RESULTS)])
    assert f'rel="{translate.REL_RESULTS}"' in value


def test_quota_errors_carry_retry_after():
    response = exception_response(errors.QuotaExceeded("slow down", retry_after=7), "http://x/y")
    assert response.status_code == 429 and response["Retry-After"] == "7"
    doc = assert_valid("exception.yaml", orjson.loads(response.content))
    assert doc["type"].endswith("/quota-exceeded") and doc["instance"] == "http://x/y"


def test_every_error_code_has_an_exception_type_and_status():
    for cls in translate._all_errors(errors.HonuaError):
        response = exception_response(cls("x"), "http://x/y")
        doc = orjson.loads(response.content)
        assert response.status_code == cls.status == doc["status"]
        assert doc["type"] == translate.EXCEPTION_TYPE + cls.code


# --- layer references and registerAs (translation only; the control plane checks them) ------

_FC_SPEC = _spec(
    ParamSpec("features", ParamType.FEATURE_COLLECTION), ParamSpec("where", ParamType.GEOMETRY, required=False),
    outputs=(ParamSpec("result", ParamType.FEATURE_COLLECTION),),
)
_ROOT = "https://honua.example/ogcapi/"


def _layer_request(inputs: dict, outputs: dict | None = None):
    body = {"inputs": inputs, **({"outputs": outputs} if outputs else {})}
    return translate.execute_request(_FC_SPEC, body, principal=PRINCIPAL, urls=translate.Urls(_ROOT)).request


def test_layer_reference_becomes_the_internal_reference():
    request = _layer_request({"features": {"layerReference": {
        "collectionId": "roads", "bbox": [500000, 4100000, 510000, 4110000],
        "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/32610", "filter": "lanes > 2"}}})
    assert request.inputs["features"] == {
        "layer": "roads", "bbox": [500000, 4100000, 510000, 4110000], "bbox_srid": 32610,
        "filter": "lanes > 2", "filter_lang": "cql2-text",
    }
    assert _layer_request({"features": {"layerReference": {"collectionId": "r"}}}).inputs["features"] == {"layer": "r"}


@pytest.mark.parametrize("ref", [
    {"collectionId": 3}, {"collectionId": "r", "bbox": [1, 2]}, {"collectionId": "r", "where": "x"},
    {"collectionId": "r", "filter": "a = 1", "filter-lang": "cql2-json"}, "roads",
])
def test_malformed_layer_references_are_refused(ref):
    with pytest.raises(errors.InvalidParameterValue):
        _layer_request({"features": {"layerReference": ref}})


def test_own_collection_href_is_a_layer_reference_and_others_are_not():
    own = _layer_request({"features": {"href": _ROOT + "collections/roads/items?bbox=1,2,3,4&filter=a%3D1"}})
    assert own.inputs["features"] == {
        "layer": "roads", "bbox": [1.0, 2.0, 3.0, 4.0], "bbox_srid": 4326, "filter": "a=1", "filter_lang": "cql2-text",
    }
    assert _layer_request({"features": {"href": _ROOT + "collections/roads"}}).inputs["features"] == {"layer": "roads"}
    # Another host with the same path is an ordinary reference (fetched through the SSRF guard).
    assert collection_in_url("https://elsewhere.example/ogcapi/collections/roads", _ROOT) is None
    assert collection_in_url(_ROOT + "processes/buffer", _ROOT) is None


def test_register_as_becomes_output_request_register_as():
    request = _layer_request(
        {"features": {"layerReference": {"collectionId": "r"}}},
        {"result": {"registerAs": {"collectionId": "r_buf", "title": "Buffers", "ttl": 60}}},
    )
    assert request.outputs["result"].register_as == {"collection_id": "r_buf", "title": "Buffers", "ttl_seconds": 60}
    for bad in ({"title": "x"}, {"collectionId": "a", "ttl": 0}, {"collectionId": "a", "ttl": 1.5},
                {"collectionId": "a", "x": 1}):
        with pytest.raises(errors.InvalidParameterValue):
            _layer_request({"features": {"layerReference": {"collectionId": "r"}}}, {"result": {"registerAs": bad}})
