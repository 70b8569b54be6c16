"""gpserver.translate without a database: every data type both ways, catalog descriptions,
execute requests, FeatureSets, jobs, results and errors (wire payloads compared with
checked-in expected JSON under expected/)."""

from __future__ import annotations

import base64
import json
import keyword
import uuid

import pytest

from controlplane import exceptions as errors
from controlplane.contracts import (
    ExecutionMode,
    ExecutionResult,
    GPExecutionType,
    GPServiceSpec,
    MessageType,
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
from controlplane.services.catalog import load_catalog
from gpserver import geometry as geo
from gpserver import translate as t
from tests.gpserver.support import expected, point_featureset

PRINCIPAL = Principal(tenant="demo")
NOW = "2026-01-02T03:04:05.000006+00:00"
RUN = uuid.UUID("00000000-0000-4000-8000-0000000000a1")


def _spec_from_doc(doc: dict) -> ProcessSpec:
    """The ProcessSpec of a catalog document (what spec_from_definition builds from the row)."""
    return ProcessSpec(
        id=doc["id"], version=doc["version"], title=doc.get("title", doc["id"]),
        description=doc.get("description", ""), keywords=tuple(doc.get("keywords", ())),
        inputs=tuple(ParamSpec.from_json(p) for p in doc.get("inputs", ())),
        outputs=tuple(ParamSpec.from_json(p) for p in doc.get("outputs", ())),
        modes=tuple(ExecutionMode(m) for m in doc.get("modes", ["sync", "async"])),
        default_mode=ExecutionMode(doc.get("default_mode", "sync")),
        tiers=tuple(Tier(x) for x in doc["tiers"]), resource_class=ResourceClass(doc["resource_class"]),
    )


CATALOG = {pid: _spec_from_doc(doc) for pid, doc in load_catalog()[0].items()}


def _service(*tasks: ProcessSpec, execution=GPExecutionType.SYNC, maximum_records=1000) -> GPServiceSpec:
    return GPServiceSpec(
        folder="Honua", name="Geometry", description="Geometry operations.", execution_type=execution,
        tasks=tasks or tuple(CATALOG.values()), maximum_records=maximum_records,
    )


SERVICE = _service()

EVERY_TYPE = (
    ParamSpec("s", ParamType.STRING, title="S", description="a string", choices=("a", "b"), default="a"),
    ParamSpec("i", ParamType.INTEGER, minimum=0, maximum=9),
    ParamSpec("n", ParamType.NUMBER, required=False),
    ParamSpec("b", ParamType.BOOLEAN, required=False, default=False),
    ParamSpec("t", ParamType.DATETIME, required=False, default="2008-01-01T00:00:00Z"),
    ParamSpec("d", ParamType.LINEAR_UNIT, default={"value": 100, "unit": "meter"}),
    ParamSpec("g", ParamType.GEOMETRY, geometry_types=("Polygon",)),
    ParamSpec("fc", ParamType.FEATURE_COLLECTION, geometry_types=("LineString", "MultiLineString")),
    ParamSpec("box", ParamType.BBOX, required=False),
    ParamSpec("sr", ParamType.SPATIAL_REFERENCE, required=False, default={"srid": 3857}),
    ParamSpec("f_in", ParamType.FILE, media_types=("text/csv",), required=False),
    ParamSpec("r", ParamType.RASTER, required=False),
    ParamSpec("o", ParamType.OBJECT, required=False, default={"k": [1, 2]}),
    ParamSpec("many", ParamType.INTEGER, multi=True, max_items=5, required=False, default=[1, 2]),
    ParamSpec("words", ParamType.STRING, multi=True, required=False),
    ParamSpec("lengths", ParamType.LINEAR_UNIT, multi=True, required=False),
)
EVERY = ProcessSpec(
    id="every_type", version="1.0.0", title="Every type", description='Says """hi""" and "bye"',
    keywords=(), inputs=EVERY_TYPE, outputs=tuple(
        ParamSpec(f"out_{p.name}", p.type, multi=p.multi, geometry_types=p.geometry_types) for p in EVERY_TYPE
    ), modes=(ExecutionMode.SYNC, ExecutionMode.ASYNC), default_mode=ExecutionMode.SYNC,
    tiers=(Tier.INPROCESS,), resource_class=ResourceClass.CPU_BURST,
)


def _result(status=RunStatus.SUCCEEDED, *, outputs=None, error=None, dismissed=False, request=None,
            messages=(), mode=ExecutionMode.ASYNC, progress=None, process_id="buffer", links=None):
    done = status.is_terminal
    return ExecutionResult(
        run_id=RUN, process_id=process_id, status=status, mode=mode, surface=Surface.GPSERVER,
        progress=(100 if done else 40) if progress is None else progress,
        messages=tuple(messages) or (RunMessage(type=MessageType.INFO, text="Submitted.", time=NOW),),
        created=NOW, started=NOW, finished=NOW if done else None, updated=NOW, outputs=outputs,
        output_links=links or {}, error=error, request=request or {}, dismissed=dismissed,
    )


# --- vocabulary and descriptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ptype", "data_type"),
    [
        (ParamType.STRING, "GPString"), (ParamType.INTEGER, "GPLong"), (ParamType.NUMBER, "GPDouble"),
        (ParamType.BOOLEAN, "GPBoolean"), (ParamType.DATETIME, "GPDate"),
        (ParamType.LINEAR_UNIT, "GPLinearUnit"), (ParamType.GEOMETRY, "GPFeatureRecordSetLayer"),
        (ParamType.FEATURE_COLLECTION, "GPFeatureRecordSetLayer"), (ParamType.BBOX, "GPExtent"),
        (ParamType.SPATIAL_REFERENCE, "GPSpatialReference"), (ParamType.FILE, "GPDataFile"),
        (ParamType.RASTER, "GPRasterDataLayer"), (ParamType.OBJECT, "GPString"),
    ],
)
def test_data_types(ptype, data_type):
    assert t.data_type(ParamSpec("x", ptype)) == data_type
    assert t.data_type(ParamSpec("x", ptype, multi=True)) == f"GPMultiValue:{data_type}"


def test_every_type_task_description():
    expected("task_every_type", t.task_description(EVERY, SERVICE))


def test_buffer_task_and_service_descriptions():
    expected("task_buffer", t.task_description(CATALOG["buffer"], SERVICE))
    service = _service(CATALOG["buffer"], CATALOG["union"], execution=GPExecutionType.ASYNC)
    expected("service_analysis", t.service_description(service))
    assert t.catalog(["Honua"], []) == {"currentVersion": 11.3, "folders": ["Honua"], "services": []}
    assert t.catalog([], [service])["services"] == [{"name": "Honua/Geometry", "type": "GPServer"}]


@pytest.mark.parametrize("pid", sorted(CATALOG))
def test_every_catalog_task_is_usable_by_the_python_client(pid):
    """defaultValue on every parameter, names that are Python identifiers, docstring-safe
    texts, and defaults the generated code can paste (non-string types: no string default)."""
    doc = t.task_description(CATALOG[pid], SERVICE)
    assert doc["name"].isidentifier() and not keyword.iskeyword(doc["name"])
    assert doc["executionType"] == "esriExecutionTypeSynchronous"
    names = set()
    for p in doc["parameters"]:
        for key in ("name", "dataType", "displayName", "description", "direction", "defaultValue", "parameterType"):
            assert key in p, (pid, p["name"], key)
        assert p["name"].isidentifier() and not keyword.iskeyword(p["name"]), p["name"]
        for text in (p["displayName"], p["description"]):
            assert '"""' not in text and not text.endswith(('"', "\\"))
        if p["dataType"] not in ("GPString",) and not p["dataType"].startswith("GPMultiValue"):
            assert not isinstance(p["defaultValue"], str), (pid, p["name"], p["defaultValue"])
        if p["dataType"] == "GPFeatureRecordSetLayer":
            assert p["defaultValue"]["features"] == [] and p["defaultValue"]["geometryType"].startswith("esriGeometry")
        if p.get("choiceList"):
            assert p["defaultValue"] in (None, *p["choiceList"])
        names.add((p["direction"], p["name"]))
    inputs = [p for p in doc["parameters"] if p["direction"] == t.DIRECTION_IN]
    assert [p["name"] for p in inputs] == [p.name for p in CATALOG[pid].inputs]
    assert all(p["parameterType"] == t.DERIVED for p in doc["parameters"] if p["direction"] == t.DIRECTION_OUT)


def test_parameter_types_and_filters():
    params = {p["name"]: p for p in t.task_description(EVERY, SERVICE)["parameters"]}
    assert params["s"]["parameterType"] == t.OPTIONAL and params["s"]["choiceList"] == ["a", "b"]
    assert params["i"]["parameterType"] == t.REQUIRED
    assert params["i"]["filter"] == {"type": "range", "minimum": 0, "maximum": 9}
    assert params["t"]["defaultValue"] == 1199145600000
    assert params["d"]["defaultValue"] == {"distance": 100, "units": "esriMeters"}
    assert params["sr"]["defaultValue"] == {"wkid": 102100, "latestWkid": 3857}
    assert params["o"]["defaultValue"] == '{"k":[1,2]}'
    assert params["many"]["defaultValue"] == [1, 2]
    assert params["g"]["defaultValue"]["geometryType"] == "esriGeometryPolygon"
    assert params["fc"]["defaultValue"]["geometryType"] == "esriGeometryPolyline"
    assert params["n"]["defaultValue"] is None
    assert '"""' not in t.task_description(EVERY, SERVICE)["description"]


def test_server_info():
    auth = {"isTokenBasedSecurity": True, "tokenServicesUrl": "http://h/arcgis/tokens/generateToken"}
    info = t.server_info(auth)
    assert info["currentVersion"] == 11.3 and info["authInfo"] == auth


# --- input values --------------------------------------------------------------------------------


def _input(name, text):
    return t.input_value(next(p for p in EVERY_TYPE if p.name == name), text)


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("s", "Main St", "Main St"),
        ("s", '"quoted"', '"quoted"'),
        ("s", "", None),
        ("i", "345", 345),
        ("i", "7.0", 7),
        ("n", "1.414", 1.414),
        ("n", "-3", -3.0),
        ("b", "true", True), ("b", "True", True), ("b", "FALSE", False), ("b", "false", False),
        ("b", "", None),
        ("t", "1199145600000", "2008-01-01T00:00:00Z"),
        ("t", "2020-05-01T10:00:00Z", "2020-05-01T10:00:00Z"),
        ("d", '{"distance": 345.678, "units": "esriMiles"}', {"value": 345.678, "unit": "mile"}),
        ("d", '{"distance": 5, "units": "Esrimeters"}', {"value": 5, "unit": "meter"}),
        ("d", '{"distance": 5, "units": "esriNauticalmiles"}', {"value": 5, "unit": "nautical_mile"}),
        ("d", '{"distance": 5, "units": "ESRIKILOMETERS"}', {"value": 5, "unit": "kilometer"}),
        ("d", '{"distance": 2, "units": "esriDecimalDegrees"}', {"value": 2, "unit": "degree"}),
        ("d", "5 miles", {"value": 5.0, "unit": "mile"}),
        ("d", "100 esriMeters", {"value": 100.0, "unit": "meter"}),
        ("box", '{"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4, "spatialReference": {"wkid": 102100}}',
         {"bbox": [1, 2, 3, 4], "srid": 3857}),
        ("box", '{"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4}', {"bbox": [1, 2, 3, 4], "srid": 4326}),
        ("box", "1,2,3,4", {"bbox": [1.0, 2.0, 3.0, 4.0], "srid": 4326}),
        ("sr", '{"wkid": 102100, "latestWkid": 3857}', {"srid": 3857}),
        ("sr", "2056", {"srid": 2056}),
        ("f_in", '{"url": "https://example.org/a.csv"}', {"href": "https://example.org/a.csv", "media_type": "text/csv"}),
        ("f_in", '{"itemID": "i1234"}', {"upload": "i1234"}),
        ("f_in", "https://example.org/b.csv", {"href": "https://example.org/b.csv", "media_type": "text/csv"}),
        ("r", '{"url": "https://example.org/lake.tif", "format": "tif"}', {"href": "https://example.org/lake.tif"}),
        ("o", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("o", "plain text", "plain text"),
        ("many", "[1, 2, 3]", [1, 2, 3]),
        ("many", "4;5", [4, 5]),
        ("words", '["Parcels", "Lights"]', ["Parcels", "Lights"]),
        ("words", "Parcels;Lights", ["Parcels", "Lights"]),
        ("lengths", '[{"distance": 1, "units": "esriMiles"}]', [{"value": 1, "unit": "mile"}]),
    ],
)
def test_input_values(name, text, value):
    assert _input(name, text) == value


@pytest.mark.parametrize(
    ("name", "text"),
    [("i", "3.5"), ("i", "x"), ("n", "abc"), ("b", "maybe"), ("t", "1/1/2020"),
     ("d", '{"distance": 1, "units": "esriParsecs"}'), ("d", "{bad json"), ("box", '{"x": 1}'),
     ("sr", '{"wkt": "nonsense"}'), ("f_in", '{"name": "x"}'), ("g", "[1, 2]"),
     ("fc", '{"features": "x"}')],
)
def test_invalid_input_values(name, text):
    with pytest.raises(errors.InvalidParameterValue):
        _input(name, text)


def test_featureset_input_from_the_python_client():
    fs = point_featureset((10, 50), (11, 51), wkid=102100, name="a")
    fs["fields"].append({"name": "when", "type": "esriFieldTypeDate", "alias": "when"})
    fs["features"][0]["attributes"]["when"] = 1199145600000
    value = _input("fc", json.dumps(fs))
    expected("input_featureset", value)
    assert value["srid"] == 3857 and value["features"][0]["id"] == 1
    assert "OBJECTID" not in value["features"][0]["properties"]
    assert value["features"][0]["properties"]["when"] == "2008-01-01T00:00:00Z"


def test_featureset_input_variants():
    # SR only on the geometries; Z from hasZ; polygon rings regrouped.
    fs = {"geometryType": "esriGeometryPolygon", "hasZ": True,
          "features": [{"geometry": {"rings": [[[0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]]],
                                     "spatialReference": {"wkid": 2056}}, "attributes": {}}]}
    value = _input("fc", json.dumps(fs))
    assert value["srid"] == 2056
    assert value["features"][0]["geometry"]["coordinates"][0][0] == [0, 0, 1]
    # GeoJSON is accepted as is (CRS84 unless it says otherwise).
    gj = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}]}
    assert _input("fc", json.dumps(gj))["srid"] == 4326
    # A bare Esri geometry, a layer's featureSet, feature collection JSON, references.
    assert _input("fc", '{"x": 1, "y": 2, "spatialReference": {"wkid": 3857}}')["srid"] == 3857
    layer = {"layerDefinition": {}, "featureSet": point_featureset((1, 2))}
    assert len(_input("fc", json.dumps(layer))["features"]) == 1
    assert len(_input("fc", json.dumps({"layers": [layer]}))["features"]) == 1
    assert _input("fc", '{"itemID": "iabc"}') == {"upload": "iabc"}
    assert _input("fc", '{"url": "https://x/FeatureServer/0"}') == {
        "href": "https://x/FeatureServer/0", "kind": "esri-feature-service"}
    assert _input("fc", '{"url": "https://x/MapServer/2", "filter": "POP > 10"}') == {
        "href": "https://x/MapServer/2", "kind": "esri-feature-service", "filter": "POP > 10"}
    # An empty FeatureSet stays a feature collection with no features.
    assert _input("fc", '{"features": []}') == {"type": "FeatureCollection", "srid": 4326, "features": []}


def test_geometry_inputs():
    fs = {"geometryType": "esriGeometryPolygon", "spatialReference": {"wkid": 4326},
          "features": [{"geometry": {"rings": [[[0, 0], [0, 1], [1, 1], [0, 0]]]}}]}
    assert _input("g", json.dumps(fs)) == {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 1], [0, 0]]], "srid": 4326}
    assert _input("g", '{"xmin": 0, "ymin": 0, "xmax": 1, "ymax": 1, "spatialReference": {"wkid": 3857}}')["srid"] == 3857
    assert _input("g", '{"features": []}') is None
    two = {"features": [{"geometry": {"x": 0, "y": 0}}, {"geometry": {"x": 1, "y": 1}}]}
    with pytest.raises(errors.InvalidParameterValue, match="one geometry"):
        _input("g", json.dumps(two))


def test_execute_request_from_form_fields():
    spec = CATALOG["buffer"]
    params = {
        "f": "json",
        "features": json.dumps(point_featureset((10, 50))),
        "Distance": '{"distance": 100, "units": "Esrimeters"}',  # other letter case
        "method": "",  # not supplied
        "dissolve": "False",
        "quad_segs": "",
        "cap_style": "flat",
        "join_style": "",
        "env:outSR": "102100",
        "env:processSR": '{"wkid": 32632}',
        "returnZ": "True",
        "unrelated": "ignored",
    }
    request = t.execute_request(spec, SERVICE, params, principal=PRINCIPAL, mode=ExecutionMode.SYNC, request_bytes=10)
    assert request.surface is Surface.GPSERVER and request.mode is ExecutionMode.SYNC
    assert request.inputs["distance"] == {"value": 100, "unit": "meter"}
    assert request.inputs["dissolve"] is False and request.inputs["cap_style"] == "flat"
    assert "method" not in request.inputs and "quad_segs" not in request.inputs
    assert (request.out_srid, request.process_srid) == (3857, 32632)
    assert request.options == {"gpserver": {"service": "Honua/Geometry", "return_z": True, "return_m": False}}
    assert request.response == "document" and request.request_bytes == 10


def test_context_wins_over_legacy_env():
    params = {"context": '{"outSR": {"wkid": 4326}, "processSR": 3857}', "env:outSR": "2056"}
    request = t.execute_request(CATALOG["buffer"], SERVICE, params, principal=PRINCIPAL, mode=ExecutionMode.ASYNC)
    assert (request.out_srid, request.process_srid) == (4326, 3857)
    with pytest.raises(errors.InvalidParameterValue):
        t.execute_request(CATALOG["buffer"], SERVICE, {"context": "[1]"}, principal=PRINCIPAL, mode=ExecutionMode.SYNC)


def test_units_both_ways():
    for esri, internal in t.ESRI_UNITS.items():
        assert t.unit_in(esri, "u") == internal
        assert t.unit_in(esri.lower(), "u") == internal
        assert t.unit_in(esri.title(), "u") == internal  # arcgis-python's "Esrimeters"
        assert t.unit_out(internal) == esri
    assert t.unit_in("esriNauticalmiles", "u") == "nautical_mile"
    assert t.unit_in("meter", "u") == "meter" and t.unit_in("Kilometers", "u") == "kilometer"


# --- output values -------------------------------------------------------------------------------


def test_featureset_output_fields_and_values():
    fc = {
        "type": "FeatureCollection", "srid": 3857,
        "fields": [{"name": "when", "type": "datetime"}, {"name": "cluster_id", "type": "integer"}],
        "features": [
            {"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [1, 2, 3]},
             "properties": {"when": "2008-01-01T00:00:00Z", "cluster_id": 1, "name": "a", "area": 1.5,
                            "count": 3, "ok": True, "big": 2**40, "meta": {"k": 1}, "OBJECTID": 99}},
            {"type": "Feature", "geometry": None,
             "properties": {"when": None, "cluster_id": -1, "name": None, "area": 2, "count": 4, "ok": False,
                            "big": 1, "meta": None}},
        ],
    }
    out = t.featureset_out(fc, t.RenderOptions())
    expected("output_featureset", out)
    assert out["geometryType"] == "esriGeometryPoint" and out["hasZ"] is False
    types = {f["name"]: f["type"] for f in out["fields"]}
    assert types == {
        "OBJECTID": "esriFieldTypeOID", "when": "esriFieldTypeDate", "cluster_id": "esriFieldTypeInteger",
        "name": "esriFieldTypeString", "area": "esriFieldTypeDouble", "count": "esriFieldTypeInteger",
        "ok": "esriFieldTypeSmallInteger", "big": "esriFieldTypeBigInteger", "meta": "esriFieldTypeString",
    }
    first = out["features"][0]["attributes"]
    assert first["OBJECTID"] == 1 and first["when"] == 1199145600000 and first["ok"] == 1 and first["meta"] == '{"k":1}'
    assert out["features"][1]["geometry"] is None and out["features"][1]["attributes"]["OBJECTID"] == 2
    with_z = t.featureset_out(fc, t.RenderOptions(return_z=True))
    assert with_z["hasZ"] is True and with_z["features"][0]["geometry"] == {"x": 1, "y": 2, "z": 3}


def test_maximum_records_and_exceeded_transfer_limit():
    fc = {"type": "FeatureCollection", "srid": 4326, "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [i, i]}, "properties": {"i": i}}
        for i in range(5)
    ]}
    capped = t.featureset_out(fc, t.RenderOptions(max_records=3))
    assert len(capped["features"]) == 3 and capped["exceededTransferLimit"] is True
    full = t.featureset_out(fc, t.RenderOptions(max_records=5))
    assert len(full["features"]) == 5 and full["exceededTransferLimit"] is False


def test_polygon_output_is_clockwise_and_empty_output_takes_the_declared_type():
    square_ccw = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    fc = {"type": "FeatureCollection", "srid": 4326,
          "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square_ccw]}, "properties": {}}]}
    ring = t.featureset_out(fc, t.RenderOptions())["features"][0]["geometry"]["rings"][0]
    assert geo.signed_area(ring) < 0
    empty = t.featureset_out({"type": "FeatureCollection", "srid": 4326, "features": []}, t.RenderOptions(),
                             param=ParamSpec("x", ParamType.FEATURE_COLLECTION, geometry_types=("LineString",)))
    assert empty["geometryType"] == "esriGeometryPolyline" and empty["features"] == []


def test_every_type_round_trips_through_its_gp_value():
    values = {
        "s": "a", "i": 3, "n": 1.5, "b": True, "t": "2008-01-01T00:00:00Z", "d": {"value": 5, "unit": "nautical_mile"},
        "box": {"bbox": [1, 2, 3, 4], "srid": 3857}, "sr": {"srid": 2056}, "o": {"a": 1}, "many": [1, 2],
        "words": ["x", "y"], "lengths": [{"value": 1, "unit": "mile"}],
    }
    opts = t.RenderOptions()
    for name, value in values.items():
        p = next(p for p in EVERY_TYPE if p.name == name)
        gp_value = t.esri_value(p, value, opts)
        text = gp_value if isinstance(gp_value, str) else json.dumps(gp_value)
        if p.multi and p.type is ParamType.STRING:
            text = json.dumps(gp_value)
        assert t.input_value(p, text) == value, (name, gp_value)
    g = next(p for p in EVERY_TYPE if p.name == "g")
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]], "srid": 3857}
    assert t.input_value(g, json.dumps(t.esri_value(g, polygon, opts))) == polygon


def test_file_outputs():
    p = ParamSpec("out", ParamType.FILE)
    assert t.esri_value(p, {"href": "https://x/y.csv"}, t.RenderOptions()) == {"url": "https://x/y.csv"}
    assert t.esri_value(p, {"upload": "i1", "artifact": "a"}, t.RenderOptions()) == {"itemID": "i1"}
    url = t.esri_value(p, {"value": "aGk=", "media_type": "text/plain"}, t.RenderOptions(), lambda n, v: f"u/{n}")
    assert url == {"url": "u/out"}
    raster = ParamSpec("ras", ParamType.RASTER)
    assert t.esri_value(raster, {"href": "h", "media_type": "image/tiff"}, t.RenderOptions()) == {"url": "h", "format": "tif"}


# --- jobs, results and errors ----------------------------------------------------------------------


def test_job_ids_are_reversible():
    assert t.job_id(RUN) == "j000000000000400080000000000000a1"
    assert t.run_id_of(t.job_id(RUN)) == RUN
    assert t.run_id_of(str(RUN)) == RUN
    assert t.run_id_of(RUN.hex.upper()) == RUN
    for bad in ("jnope", "", "j123", "x" * 33):
        with pytest.raises(errors.NoSuchJob):
            t.run_id_of(bad)


@pytest.mark.parametrize(
    ("status", "dismissed", "esri"),
    [
        (RunStatus.QUEUED, False, "esriJobSubmitted"), (RunStatus.WAITING, False, "esriJobWaiting"),
        (RunStatus.RUNNING, False, "esriJobExecuting"), (RunStatus.CANCELLING, False, "esriJobCancelling"),
        (RunStatus.SUCCEEDED, False, "esriJobSucceeded"), (RunStatus.FAILED, False, "esriJobFailed"),
        (RunStatus.TIMED_OUT, False, "esriJobTimedOut"), (RunStatus.CANCELLED, False, "esriJobCancelled"),
        (RunStatus.SUCCEEDED, True, "esriJobDeleted"), (RunStatus.FAILED, True, "esriJobDeleted"),
        (RunStatus.CANCELLED, True, "esriJobCancelled"), (RunStatus.CANCELLING, True, "esriJobCancelling"),
    ],
)
def test_job_status_mapping(status, dismissed, esri):
    assert t.job_status(_result(status, dismissed=dismissed)) == esri


def test_job_documents():
    spec = CATALOG["buffer"]
    running = _result(RunStatus.RUNNING, messages=[
        RunMessage(type=MessageType.INFO, text="Submitted.", time=NOW),
        RunMessage(type=MessageType.WARNING, text="Slow tier.", time=NOW),
    ])
    expected("job_running", t.job_document(running, spec))
    assert "results" not in t.job_document(running, spec)
    assert "messages" not in t.job_document(running, spec, return_messages=False)
    done = t.job_document(_result(), spec)
    assert done["results"] == {"result": {"paramUrl": "results/result"}}
    assert done["inputs"]["features"] == {"paramUrl": "inputs/features"}
    failed = _result(RunStatus.FAILED, error={"code": "invalid-geometry", "message": "ring not closed"})
    expected("job_failed", t.job_document(failed, spec))
    assert t.submit_document(_result(RunStatus.QUEUED)) == {"jobId": t.job_id(RUN), "jobStatus": "esriJobSubmitted"}


def test_task_of_checks_the_url():
    service = _service(CATALOG["buffer"], CATALOG["union"])
    result = _result()
    assert t.task_of(result, service, None, "j").id == "buffer"
    assert t.task_of(result, service, "buffer", "j").id == "buffer"
    with pytest.raises(errors.NoSuchJob):
        t.task_of(result, service, "union", "j")
    with pytest.raises(errors.NoSuchJob):
        t.task_of(_result(process_id="voronoi"), service, None, "j")


def _buffer_output():
    return {"result": {"type": "FeatureCollection", "srid": 4326, "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
         "properties": {"name": "a"}},
    ]}}


def test_execute_response():
    spec = CATALOG["buffer"]
    result = _result(outputs=_buffer_output(), mode=ExecutionMode.SYNC)
    doc = t.execute_response(result, result.outputs, spec, t.RenderOptions(max_records=1000), job_url="http://x/j")
    expected("execute_buffer", doc)


def test_execute_past_the_deadline_names_the_job():
    running = _result(RunStatus.RUNNING, mode=ExecutionMode.ASYNC)
    with pytest.raises(t.JobStillRunning) as info:
        t.execute_response(running, {}, CATALOG["buffer"], t.RenderOptions(), job_url="http://x/jobs/j1")
    doc = t.honua_error_document(info.value)
    assert doc["error"]["code"] == 504 and doc["error"]["details"] == ["http://x/jobs/j1"]
    assert doc["jobId"] == t.job_id(RUN) and doc["jobStatus"] == "esriJobExecuting"
    assert t.job_id(RUN) in doc["error"]["message"]


def test_failed_and_cancelled_runs_are_errors_with_their_messages():
    failed = _result(RunStatus.FAILED, error={"code": "invalid-geometry", "message": "ring not closed"},
                     messages=[RunMessage(type=MessageType.INFO, text="Started.", time=NOW)])
    with pytest.raises(errors.InvalidGeometry) as info:
        t.execute_response(failed, {}, CATALOG["buffer"], t.RenderOptions(), job_url="u")
    doc = t.honua_error_document(info.value)
    assert doc == {"error": {"code": 400, "message": "Job failed: ring not closed", "details": ["Started."],
                             "messageCode": "invalid-geometry"}}
    crashed = _result(RunStatus.FAILED, error={"code": "boom", "message": "x"}, mode=ExecutionMode.SYNC)
    with pytest.raises(errors.ExecutionFailed) as info:
        t.result_document(crashed, {}, CATALOG["buffer"], "result", t.RenderOptions())
    assert t.honua_error_document(info.value)["error"]["code"] == 500
    with pytest.raises(t.JobNotSucceeded, match="cancelled"):
        t.result_document(_result(RunStatus.CANCELLED), {}, CATALOG["buffer"], "result", t.RenderOptions())
    with pytest.raises(t.JobNotSucceeded, match="deleted"):
        t.result_document(_result(dismissed=True), {}, CATALOG["buffer"], "result", t.RenderOptions())
    with pytest.raises(errors.ResultNotReady):
        t.result_document(_result(RunStatus.RUNNING), {}, CATALOG["buffer"], "result", t.RenderOptions())
    with pytest.raises(errors.NoSuchOutput):
        t.result_document(_result(), {}, CATALOG["buffer"], "nope", t.RenderOptions())


def test_result_and_input_documents():
    spec = CATALOG["buffer"]
    result = _result(outputs=_buffer_output(), request={"options": {"gpserver": {"return_z": True}}})
    opts = t.render_options(result, _service(), {"returnM": "true"})
    assert opts == t.RenderOptions(return_z=True, return_m=True, max_records=1000)
    assert t.render_options(result, _service(), {"returnZ": "false"}).return_z is False
    doc = t.result_document(result, _buffer_output(), spec, "result", opts)
    assert doc["paramName"] == "result" and doc["dataType"] == "GPFeatureRecordSetLayer"
    assert doc["value"]["features"][0]["attributes"] == {"OBJECTID": 1, "name": "a"}
    inputs = {"distance": {"value": 100, "unit": "meter"}, "method": "auto"}
    assert t.input_document(spec, inputs, "distance", opts) == {
        "paramName": "distance", "dataType": "GPLinearUnit", "value": {"distance": 100, "units": "esriMeters"}}
    assert t.input_document(spec, inputs, "quad_segs", opts)["value"] is None
    with pytest.raises(errors.NoSuchOutput):
        t.input_document(spec, inputs, "nope", opts)


def test_file_bytes():
    spec = ProcessSpec(id="e", version="1", title="E", description="", keywords=(), inputs=(),
                       outputs=(ParamSpec("blob", ParamType.FILE), ParamSpec("s", ParamType.STRING)),
                       modes=(ExecutionMode.SYNC,), default_mode=ExecutionMode.SYNC, tiers=(Tier.INPROCESS,),
                       resource_class=ResourceClass.CPU_BURST)
    values = {"blob": {"value": base64.b64encode(b"hello").decode(), "media_type": "text/plain", "encoding": "base64"},
              "s": "x"}
    assert t.file_bytes(_result(), values, spec, "blob") == (b"hello", "text/plain")
    with pytest.raises(errors.NoSuchOutput):
        t.file_bytes(_result(), values, spec, "s")


def test_error_documents():
    doc = t.honua_error_document(errors.InvalidParameterValue("bad distance", details=["d"]))
    assert doc == {"error": {"code": 400, "message": "bad distance", "details": ["d"],
                             "messageCode": "invalid-parameter-value"}}
    assert t.honua_error_document(errors.NoSuchJob("no job x"))["error"]["code"] == 404
    assert t.INVALID_URL["error"] == {"code": 400, "message": "Invalid URL", "details": ["Invalid URL"],
                                      "messageCode": "invalid-url"}


def test_job_uuids_in_messages_become_job_ids():
    exc = errors.ResultNotReady(f"job {RUN} is running", details=[f"see jobs {RUN}"])
    doc = t.honua_error_document(exc)
    assert doc["error"]["message"] == f"job {t.job_id(RUN)} is running"
    assert doc["error"]["details"] == [f"see jobs {t.job_id(RUN)}"]
    assert t.job_ids_in(f"artifact {RUN}") == f"artifact {RUN}"


# --- Honua layers by URL and hosted output layers ------------------------------------------------

_LAYERS = "https://honua.example/ogcapi/"


def _gp_request(**params):
    base = {"distance": '{"distance": 5, "units": "esriMeters"}'}
    return t.execute_request(
        CATALOG["buffer"], SERVICE, {**base, **params}, principal=PRINCIPAL, mode=ExecutionMode.SYNC,
        layers_root=_LAYERS,
    )


def test_own_layer_url_is_a_layer_reference_with_a_where_filter():
    request = _gp_request(features=json.dumps({"url": _LAYERS + "collections/roads/items", "filter": "lanes > 2"}))
    assert request.inputs["features"] == {"layer": "roads", "filter": "lanes > 2", "filter_lang": "sql-where"}
    other = _gp_request(features=json.dumps({"url": "https://elsewhere.example/ogcapi/collections/roads"}))
    assert other.inputs["features"]["kind"] == "esri-feature-service"  # read as a feature service


def test_esri_out_feature_service_name_registers_the_feature_outputs():
    request = _gp_request(features=json.dumps({"url": _LAYERS + "collections/roads"}),
                          esri_out_feature_service_name="roads_buffered")
    assert request.outputs["result"].register_as == {
        "collection_id": "roads_buffered", "title": "roads_buffered", "ttl_seconds": None,
    }
    as_json = _gp_request(esri_out_feature_service_name=json.dumps({"serviceProperties": {"name": "svc"}}))
    assert as_json.outputs["result"].register_as["collection_id"] == "svc"
    assert _gp_request(esri_out_feature_service_name="").outputs == {}
