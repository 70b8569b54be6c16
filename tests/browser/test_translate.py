"""The job browser's translation without a database: form fields of each parameter type ->
internal values, the job list's query -> filter, output files."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from browser import translate
from controlplane.contracts import (
    ExecutionMode,
    ExecutionResult,
    ParamSpec,
    ParamType,
    Principal,
    ProcessSpec,
    ResourceClass,
    RunStatus,
    Surface,
    Tier,
)
from controlplane.exceptions import InvalidParameterValue, NoSuchOutput

P = ParamSpec
SPEC = ProcessSpec(
    id="kitchen",
    version="1.0.0",
    title="Kitchen sink",
    description="",
    keywords=(),
    inputs=(
        P("text", ParamType.STRING),
        P("choice", ParamType.STRING, required=False, choices=("a", "b"), default="a"),
        P("count", ParamType.INTEGER, required=False, default=8),
        P("ratio", ParamType.NUMBER, required=False),
        P("flag", ParamType.BOOLEAN, required=False, default=True),
        P("when", ParamType.DATETIME, required=False),
        P("distance", ParamType.LINEAR_UNIT, required=False),
        P("shape", ParamType.GEOMETRY, required=False),
        P("features", ParamType.FEATURE_COLLECTION, required=False),
        P("box", ParamType.BBOX, required=False),
        P("sr", ParamType.SPATIAL_REFERENCE, required=False),
        P("blob", ParamType.FILE, required=False, media_types=("application/octet-stream",)),
        P("anything", ParamType.OBJECT, required=False),
        P("numbers", ParamType.INTEGER, required=False, multi=True),
    ),
    outputs=(P("result", ParamType.FEATURE_COLLECTION, title="Result"), P("note", ParamType.STRING)),
    modes=(ExecutionMode.SYNC, ExecutionMode.ASYNC),
    default_mode=ExecutionMode.SYNC,
    tiers=(Tier.INPROCESS,),
    resource_class=ResourceClass.CPU_BURST,
)
POINT = {"type": "Point", "coordinates": [1.5, 2.5]}


def test_each_widget_becomes_the_internal_value():
    data = {
        "in_text": "  hello ", "in_choice": "b", "in_count": "3", "in_ratio": "0.25", "in_when": "2024-05-01T12:30",
        "in_distance": "2.5", "in_distance_unit": "kilometer", "in_shape": json.dumps({"type": "Feature", "geometry": POINT}),
        "in_features": json.dumps(POINT), "in_box": "1, 2, 3, 4", "in_sr": "EPSG:3857",
        "in_anything": '{"k": [1, 2]}', "in_numbers": "1, 2,3",
    }
    files = {"in_blob": translate.UploadedFile(b"\x00\x01", "application/x-whatever", "b.bin")}
    inputs = translate.form_inputs(SPEC, data, files)
    assert inputs == {
        "text": "hello", "choice": "b", "count": 3, "ratio": 0.25, "flag": False,
        "when": "2024-05-01T12:30:00Z",
        "distance": {"value": 2.5, "unit": "kilometer"},
        "shape": {**POINT, "srid": 4326},
        "features": {"type": "FeatureCollection", "srid": 4326,
                     "features": [{"type": "Feature", "geometry": POINT, "properties": {}}]},
        "box": {"bbox": [1.0, 2.0, 3.0, 4.0], "srid": 4326},
        "sr": {"srid": 3857},
        "blob": {"value": base64.b64encode(b"\x00\x01").decode(), "media_type": "application/x-whatever",
                 "encoding": "base64"},
        "anything": {"k": [1, 2]},
        "numbers": [1, 2, 3],
    }


def test_blank_fields_are_not_given_and_a_crs_member_is_honoured():
    features = {"type": "FeatureCollection", "features": [],
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}}
    inputs = translate.form_inputs(SPEC, {"in_text": "x", "in_count": "", "in_flag": "true",
                                          "in_features": json.dumps(features)}, {})
    assert inputs == {"text": "x", "flag": True, "features": {"type": "FeatureCollection", "features": [], "srid": 3857}}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("in_count", "2.5", "is not a whole number"),
        ("in_ratio", "many", "is not a number"),
        ("in_features", "{oops", "not valid JSON"),
        ("in_features", "[1, 2]", "GeoJSON is a JSON object"),
        ("in_box", "1 2 3", "4 numbers"),
        ("in_when", "yesterday", "not a date and time"),
    ],
)
def test_bad_values_name_their_input(field, value, message):
    with pytest.raises(InvalidParameterValue) as caught:
        translate.form_inputs(SPEC, {field: value}, {})
    assert message in caught.value.message
    assert caught.value.details == [f"input {field.removeprefix('in_')!r}"]


def test_the_request_is_a_browser_run_in_the_chosen_mode():
    who = Principal(tenant="demo", user_id=1, username="alice", roles=("editor",))
    request = translate.execute_request(SPEC, {"in_text": "x", "mode": "async"}, {}, principal=who, request_bytes=10)
    assert request.surface is Surface.BROWSER and request.mode is ExecutionMode.ASYNC
    assert request.principal == who and request.request_bytes == 10
    assert translate.execute_request(SPEC, {"in_text": "x"}, {}, principal=who, request_bytes=1).mode is None
    with pytest.raises(InvalidParameterValue):
        translate.execute_request(SPEC, {"mode": "later"}, {}, principal=who, request_bytes=1)


def test_form_fields_show_defaults_or_what_was_sent():
    fields = {f.param: f for f in translate.form_fields(SPEC)}
    assert fields["count"].value == "8" and fields["flag"].checked is True and fields["choice"].value == "a"
    assert fields["distance"].widget == "linear_unit" and "kilometer" in fields["distance"].units
    assert fields["features"].widget == "geojson" and fields["numbers"].widget == "list"
    again = {f.param: f for f in translate.form_fields(SPEC, {"in_count": "9", "in_distance_unit": "mile"})}
    assert again["count"].value == "9" and again["flag"].checked is False and again["distance"].unit == "mile"
    modes = translate.mode_choices(SPEC)
    assert [(m["value"], m["checked"]) for m in modes] == [("sync", True), ("async", False)]


def test_list_query():
    shown, filters = translate.list_query({"status": "running", "surface": "ogc", "after": "2024-01-02",
                                           "before": "2024-01-03", "process": "buffer", "offset": "25"})
    assert filters.statuses == (RunStatus.RUNNING,) and filters.surfaces == (Surface.OGC,)
    assert filters.process_ids == ("buffer",)
    assert filters.created_after == datetime(2024, 1, 2, tzinfo=UTC)
    assert filters.created_before == datetime(2024, 1, 3, 23, 59, 59, 999999, tzinfo=UTC)
    assert shown.offset == 25 and shown.problems == ()
    assert shown.params(offset=50)["offset"] == "50" and "q" not in shown.params()
    run = uuid.uuid4()
    assert translate.list_query({"q": "j" + run.hex})[1].run_ids == (run,)
    shown, filters = translate.list_query({"status": "lost", "after": "soon", "q": "nope"})
    assert len(shown.problems) == 3 and filters.statuses == () and filters.created_after is None
    assert filters.run_ids == (uuid.UUID(int=0),)  # a search for no job id finds nothing


def _result(**kw):
    base = dict(
        run_id=uuid.UUID("12345678-1234-5678-1234-567812345678"), process_id="kitchen", status=RunStatus.SUCCEEDED,
        mode=ExecutionMode.SYNC, surface=Surface.BROWSER, progress=100, messages=(), created="2024-01-01T00:00:00+00:00",
        started="2024-01-01T00:00:01+00:00", finished="2024-01-01T00:00:03.500000+00:00",
        updated="2024-01-01T00:00:03+00:00", outputs=None, output_links={}, error=None, request={},
    )
    return ExecutionResult(**{**base, **kw})


def test_output_files():
    fc = {"type": "FeatureCollection", "srid": 3857, "features": [
        {"type": "Feature", "properties": {"n": 1}, "geometry": {"type": "Point", "coordinates": [10.0, 20.0]}}]}
    values = {"result": fc, "note": "plain words"}
    geo = translate.output_file(_result(), SPEC, "result", values, "geojson")
    doc = json.loads(geo.data)
    assert geo.media_type == "application/geo+json" and geo.filename == "kitchen-12345678-result.geojson"
    assert "srid" not in doc and doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::3857"
    esri = json.loads(translate.output_file(_result(), SPEC, "result", values, "esrijson").data)
    assert esri["spatialReference"]["wkid"] == 102100 and esri["features"][0]["geometry"] == {"x": 10.0, "y": 20.0}
    text = translate.output_file(_result(), SPEC, "note", values, "raw")
    assert text.data == b"plain words" and text.media_type.startswith("text/plain")
    with pytest.raises(InvalidParameterValue):
        translate.output_file(_result(), SPEC, "note", values, "geojson")
    with pytest.raises(NoSuchOutput):
        translate.output_file(_result(), SPEC, "missing", values, "geojson")


def test_job_status_and_row():
    r = _result(progress_message="Halfway", dismissed=True)
    status = translate.job_status(r)
    assert status["badge"] == {"label": "Dismissed", "css": "dismissed", "status": "succeeded"}
    assert status["step"] == "Halfway" and status["finished"] is True
    row = translate.job_row(r)
    assert row["duration"] == "2.5 s" and row["created_text"] == "2024-01-01 00:00:00"
    assert row["surface"] == "Job browser"
