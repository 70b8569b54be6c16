"""GPServer resources through Django's test client: catalog, services, tasks, execute and
submitJob with GET, form POST and multipart, f=json/pjson/html, errors as HTTP 200 bodies."""

from __future__ import annotations

import json
import math

import pytest
from django.test import override_settings

from controlplane.models import GPService
from gpserver import geometry as geo
from gpserver import translate
from tests.gpserver.support import (
    ANALYSIS,
    GEOMETRY,
    ROOT,
    assert_error,
    point_featureset,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]

DISTANCE = {"distance": 100, "units": "esriMeters"}


def _ground_radius(ring, lon0, lat0):
    """Distances in metres from (lon0, lat0) to each vertex (equirectangular; fine at 100 m)."""
    k = math.cos(math.radians(lat0))
    return [math.hypot((x - lon0) * 111_320 * k, (y - lat0) * 110_574) for x, y in ring]


# --- server, folders, services, tasks ---------------------------------------------------------


def test_info_and_catalog(api):
    info = api.get("/arcgis/rest/info")
    assert info["currentVersion"] == 11.3 and info["authInfo"]["isTokenBasedSecurity"] is True
    assert info["authInfo"]["tokenServicesUrl"].endswith("/arcgis/tokens/generateToken")
    root = api.get(ROOT)
    assert root["folders"] == ["Honua"] and root["services"] == []
    folder = api.get(f"{ROOT}/Honua")
    assert folder["folders"] == []
    assert {"name": "Honua/Geometry", "type": "GPServer"} in folder["services"]
    assert {"name": "Honua/Analysis", "type": "GPServer"} in folder["services"]
    assert_error(api.get(f"{ROOT}/Nowhere"), 404, "folder")
    assert api.get(f"{ROOT}/honua/")["services"] == folder["services"]  # case, trailing slash


def test_services_advertise_their_execution_type(api):
    geometry = api.get(GEOMETRY)
    assert geometry["executionType"] == "esriExecutionTypeSynchronous"
    assert geometry["resultMapServerName"] == "" and geometry["capabilities"] == "Uploads"
    assert "buffer" in geometry["tasks"] and all(t.isidentifier() for t in geometry["tasks"])
    analysis = api.get(ANALYSIS)
    assert analysis["executionType"] == "esriExecutionTypeAsynchronous"
    assert {"buffer", "dbscan", "voronoi", "kmeans", "cluster_within"} <= set(analysis["tasks"])
    assert api.get(f"{ROOT}/honua/geometry/GPServer")["tasks"] == geometry["tasks"]
    assert_error(api.get(f"{ROOT}/Honua/Nope/GPServer"), 404)


def test_task_resource_by_get_and_by_post_as_arcgis_python_sends_it(api):
    by_get = api.get(f"{GEOMETRY}/buffer")
    by_post = api.post(f"{GEOMETRY}/buffer")  # body: f=json
    assert by_get == by_post
    assert by_get["name"] == "buffer" and by_get["executionType"] == "esriExecutionTypeSynchronous"
    assert all("defaultValue" in p for p in by_get["parameters"])
    assert api.get(f"{ANALYSIS}/buffer")["executionType"] == "esriExecutionTypeAsynchronous"
    assert_error(api.get(f"{GEOMETRY}/voronoi"), 404, "no task")


def test_every_task_of_every_service_describes_itself(api):
    for service in (GEOMETRY, ANALYSIS):
        for task in api.get(service)["tasks"]:
            doc = api.post(f"{service}/{task}")
            assert doc["name"] == task
            for p in doc["parameters"]:
                assert {"name", "dataType", "direction", "defaultValue", "parameterType", "displayName"} <= set(p)


def test_formats(api, client):
    pretty = client.get(GEOMETRY, {"f": "pjson"})
    assert pretty.status_code == 200 and pretty["Content-Type"].startswith("application/json")
    assert b"\n  " in pretty.content and json.loads(pretty.content) == api.get(GEOMETRY)
    plain = client.get(GEOMETRY, {"f": "json"})
    assert b"\n" not in plain.content
    # No f: JSON for programs, HTML for browsers.
    assert client.get(GEOMETRY)["Content-Type"].startswith("application/json")
    assert client.get(GEOMETRY, headers={"Accept": "text/html"})["Content-Type"].startswith("text/html")
    assert_error(api.get(GEOMETRY, f="kmz"), 400, "f=")


def test_html_pages(api):
    assert "Honua" in api.html(ROOT)
    assert "Honua/Geometry" in api.html(f"{ROOT}/Honua")
    page = api.html(GEOMETRY)
    assert 'href="/arcgis/rest/services/Honua/Geometry/GPServer/buffer?f=html"' in page
    task = api.html(f"{GEOMETRY}/buffer")
    assert 'action="/arcgis/rest/services/Honua/Geometry/GPServer/buffer/execute"' in task
    assert 'formaction="/arcgis/rest/services/Honua/Geometry/GPServer/buffer/submitJob"' in task
    assert 'name="features"' in task and 'name="distance"' in task and "<select" in task
    assert "Invalid URL" in api.html("/arcgis/rest/nothing/here")
    info = api.html("/arcgis/rest/info")
    assert "Server information" in info and "11.3" in info
    upload_page = api.html(f"{GEOMETRY}/uploads/info")
    assert 'enctype="multipart/form-data"' in upload_page


def test_html_form_execute_and_submit(api, client):
    form = {"features": json.dumps(point_featureset((10, 50))), "distance": json.dumps(DISTANCE), "f": "html",
            "method": "auto"}
    page = client.post(f"{GEOMETRY}/buffer/execute", form)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert b"esriGeometryPolygon" in page.content
    page = client.post(f"{GEOMETRY}/buffer/submitJob", form)
    assert page.status_code == 200 and b"esriJobSubmitted" in page.content
    assert b"/buffer/jobs/j" in page.content


def test_invalid_urls_are_esri_errors(api, client):
    for path in ("/arcgis/rest/nothing", "/arcgis/", f"{GEOMETRY}/buffer/execute/more", f"{GEOMETRY}/jobs"):
        response = client.get(path, {"f": "json"})
        assert response.status_code == 200
        assert json.loads(response.content)["error"]["code"] in (400, 404)
    assert_error(api.post("/arcgis/rest/nothing"), 400, "Invalid URL")


# --- execute -------------------------------------------------------------------------------------


def _buffer_ring(doc, lon=10, lat=50):
    [result] = doc["results"]
    assert result["paramName"] == "result" and result["dataType"] == "GPFeatureRecordSetLayer"
    fs = result["value"]
    assert fs["geometryType"] == "esriGeometryPolygon" and fs["exceededTransferLimit"] is False
    ring = fs["features"][0]["geometry"]["rings"][0]
    assert geo.signed_area(ring) < 0  # clockwise
    radii = _ground_radius(ring[:-1], lon, lat)
    assert min(radii) > 98 and max(radii) < 102, (min(radii), max(radii))
    return fs


@pytest.mark.parametrize("how", ["form", "multipart", "get"])
def test_execute_buffer_featureset(api, client, how):
    params = {"features": point_featureset((10, 50), name="a"), "distance": {"distance": 100, "units": "Esrimeters"},
              "method": "", "dissolve": "False"}
    if how == "get":
        doc = api.get(f"{GEOMETRY}/buffer/execute", **{k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
    else:
        doc = api.post(f"{GEOMETRY}/buffer/execute", multipart=how == "multipart", **params)
    fs = _buffer_ring(doc)
    assert fs["spatialReference"] == {"wkid": 4326, "latestWkid": 4326}
    assert fs["features"][0]["attributes"] == {"OBJECTID": 1, "name": "a"}
    assert [f["name"] for f in fs["fields"]] == ["OBJECTID", "name"]
    assert all(m["type"].startswith("esriJobMessageType") for m in doc["messages"])


def test_execute_and_submit_on_any_service(api):
    # The asynchronous service's task answers execute, the synchronous one's submitJob.
    _buffer_ring(api.post(f"{ANALYSIS}/buffer/execute", features=point_featureset((10, 50)), distance=DISTANCE))
    job = api.post(f"{GEOMETRY}/buffer/submitJob", features=point_featureset((10, 50)), distance=DISTANCE)
    assert job["jobStatus"] == "esriJobSubmitted" and job["jobId"].startswith("j") and len(job["jobId"]) == 33


def test_execute_in_web_mercator_with_out_sr(api):
    fs = point_featureset((1113194.9, 6446275.8), wkid=102100)
    doc = api.post(f"{GEOMETRY}/buffer/execute", features=fs, distance=DISTANCE, **{"env:outSR": "4326"})
    value = doc["results"][0]["value"]
    assert value["spatialReference"] == {"wkid": 4326, "latestWkid": 4326}
    _buffer_ring(doc, 10.0, 50.0)
    doc = api.post(f"{GEOMETRY}/buffer/execute", features=fs, distance=DISTANCE)
    assert doc["results"][0]["value"]["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    doc = api.post(f"{GEOMETRY}/buffer/execute", features=point_featureset((10, 50)), distance=DISTANCE,
                   context=json.dumps({"outSR": {"wkid": 102100}}))
    ring = doc["results"][0]["value"]["features"][0]["geometry"]["rings"][0]
    assert doc["results"][0]["value"]["spatialReference"]["latestWkid"] == 3857 and ring[0][0] > 1e6


def test_return_z(api):
    fs = point_featureset((10, 50))
    fs["hasZ"] = True
    fs["features"][0]["geometry"]["z"] = 12.5
    flat = api.post(f"{GEOMETRY}/make_valid/execute", features=fs)["results"][0]["value"]
    assert flat["hasZ"] is False and "z" not in flat["features"][0]["geometry"]
    with_z = api.post(f"{GEOMETRY}/make_valid/execute", features=fs, returnZ="true")["results"][0]["value"]
    assert with_z["hasZ"] is True and with_z["features"][0]["geometry"]["z"] == 12.5


def test_maximum_records_cap_the_features_returned(api):
    GPService.objects.filter(folder="Honua", name="Geometry").update(maximum_records=2)
    assert api.get(GEOMETRY)["maximumRecords"] == 2
    doc = api.post(f"{GEOMETRY}/centroid/execute", features=point_featureset((1, 1), (2, 2), (3, 3)))
    value = doc["results"][0]["value"]
    assert len(value["features"]) == 2 and value["exceededTransferLimit"] is True


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"distance": DISTANCE}, 400, "features"),  # required input missing
        ({"features": "", "distance": DISTANCE}, 400, "features"),  # empty string: not supplied
        ({"features": "{not json", "distance": DISTANCE}, 400, "JSON"),
        ({"features": point_featureset((10, 50)), "distance": {"distance": 1, "units": "esriLightYears"}}, 400, "unit"),
        ({"features": point_featureset((10, 50)), "distance": DISTANCE, "method": "sideways"}, 400, "sideways"),
        ({"features": point_featureset((10, 50)), "distance": DISTANCE, "dissolve": "perhaps"}, 400, "boolean"),
        ({"features": point_featureset((10, 50)), "distance": DISTANCE, "quad_segs": "100"}, 400, "at most"),
        ({"features": {"features": [{"geometry": {"rings": [[[0, 0], [1, 1]]]}}]}, "distance": DISTANCE}, 400, ""),
    ],
)
def test_invalid_parameters_are_http_200_errors(api, params, code, text):
    for op in ("execute", "submitJob"):
        assert_error(api.post(f"{GEOMETRY}/buffer/{op}", **params), code, text)


def test_a_crash_answers_200_with_code_500(api, monkeypatch):
    from gpserver import views

    def boom(request):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(views, "run_submit", boom)
    for op in ("execute", "submitJob"):
        error = assert_error(api.post(f"{GEOMETRY}/buffer/{op}", features=point_featureset((1, 1)), distance=DISTANCE), 500)
        assert "fire" not in error["message"]


def test_failed_execution_is_an_error_with_the_reason(api):
    doc = api.post(f"{GEOMETRY}/project/execute", features=point_featureset((1, 1)), target_srid='{"wkid": 999999}')
    error = assert_error(doc)
    assert "999999" in error["message"] + " ".join(error["details"])


@override_settings()
def test_execute_past_the_sync_deadline_names_the_job_to_poll(api, settings):
    settings.HONUA = {**settings.HONUA, "SYNC_DEADLINE_SECONDS": 0.3}
    doc = api.post(f"{ANALYSIS}/echo/execute", string_input="late", pause="1.5")
    error = assert_error(doc, 504)
    job = doc["jobId"]
    assert job in error["message"] and error["details"][0].endswith(f"/echo/jobs/{job}")
    assert doc["jobStatus"] in ("esriJobExecuting", "esriJobSubmitted")

    def done():
        return api.get(f"{ANALYSIS}/echo/jobs/{job}")["jobStatus"] == "esriJobSucceeded"

    wait_for(done, timeout=20)
    result = api.get(f"{ANALYSIS}/echo/jobs/{job}/results/output_string_input")
    assert result == {"paramName": "output_string_input", "dataType": "GPString", "value": "late"}


def test_every_data_type_through_echo(api):
    box = {"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4, "spatialReference": {"wkid": 4326}}
    doc = api.post(
        f"{ANALYSIS}/echo/execute", string_input="Main St", double_input="1.414", array_input="[1, 2, 3]",
        bbox_input=box, object_input='{"a": [1, {"b": null}]}',
    )
    # echo's outputs are named like its inputs (OGC's test process); GPServer publishes them
    # as output_<name>, since the Python client keeps inputs and outputs in one namespace
    values = {r["paramName"]: (r["dataType"], r["value"]) for r in doc["results"]}
    assert values["output_string_input"] == ("GPString", "Main St")
    assert values["output_double_input"] == ("GPDouble", 1.414)
    assert values["output_array_input"] == ("GPMultiValue:GPLong", [1, 2, 3])
    assert values["output_bbox_input"] == ("GPExtent", {**box, "spatialReference": {"wkid": 4326, "latestWkid": 4326}})
    assert values["output_object_input"] == ("GPString", '{"a":[1,{"b":null}]}')
    assert values["output_binary_input"] == ("GPDataFile", None)


def test_unset_data_file_as_the_python_client_sends_it(api):
    """arcgis encodes an unset GPDataFile as ``{"url": ""}``: not supplied, like ""."""
    doc = api.post(f"{ANALYSIS}/echo/execute", string_input="x", binary_input='{"url": ""}')
    assert "error" not in doc, doc
    assert {r["paramName"]: r["value"] for r in doc["results"]}["output_binary_input"] is None
    error = api.post(f"{ANALYSIS}/echo/execute", string_input="x", binary_input='{"path": "x"}')["error"]
    assert error["code"] == 400 and "binary_input" in error["message"]


def test_output_names_never_clash_with_inputs(api):
    task = api.get(f"{ANALYSIS}/echo")
    inputs = {p["name"] for p in task["parameters"] if p["direction"] == "esriGPParameterDirectionInput"}
    outputs = {p["name"] for p in task["parameters"] if p["direction"] == "esriGPParameterDirectionOutput"}
    assert "output_string_input" in outputs and not inputs & outputs
    job = api.post(f"{ANALYSIS}/echo/submitJob", string_input="named")["jobId"]
    from controlplane.tasks import run_execute

    assert run_execute(str(translate.run_id_of(job))) == "done"
    assert set(api.get(f"{ANALYSIS}/echo/jobs/{job}")["results"]) == outputs
    # the process's own output name still reaches the same result
    assert api.get(f"{ANALYSIS}/echo/jobs/{job}/results/string_input")["value"] == "named"


def test_job_ids_are_the_run_ids(api):
    job = api.post(f"{ANALYSIS}/echo/submitJob", string_input="x")["jobId"]
    from controlplane.models import ProcessRun

    run = ProcessRun.objects.get(id=translate.run_id_of(job))
    assert run.surface == "gpserver" and run.mode == "async" and run.request["response"] == "document"


def test_admission_limits_answer_200_errors(api):
    from controlplane.models import ProcessDefinition

    ProcessDefinition.objects.filter(process_id="buffer", is_current=True).update(limits={"max_features": 1})
    error = assert_error(api.post(f"{GEOMETRY}/buffer/execute", features=point_featureset((1, 1), (2, 2)),
                                  distance=DISTANCE), 413, "limit")
    assert error["messageCode"] == "input-limit-exceeded"


def test_request_size_counts_decoded_parameters():
    from gpserver.parsers import request_bytes

    assert request_bytes({"features": '{"a": "b c"}', "f": "json"}) == len("features") + 12 + 1 + 4


def test_task_names_match_without_regard_to_case_and_cors(api, client):
    assert api.get(f"{GEOMETRY}/BUFFER")["name"] == "buffer"
    assert client.get(GEOMETRY, {"f": "json"})["Access-Control-Allow-Origin"] == "*"


def test_large_results_spilled_to_artifacts_come_back_whole(api):
    from controlplane.tasks import run_execute

    points = [(10 + i * 0.01, 50 + (i % 7) * 0.01) for i in range(400)]
    job = api.post(f"{ANALYSIS}/buffer/submitJob", features=point_featureset(*points), distance=DISTANCE)["jobId"]
    run_execute(str(translate.run_id_of(job)))
    from controlplane.models import ProcessRun

    assert ProcessRun.objects.get(id=translate.run_id_of(job)).output_links  # spilled
    value = api.get(f"{ANALYSIS}/buffer/jobs/{job}/results/result")["value"]
    assert len(value["features"]) == 400 and value["exceededTransferLimit"] is False
    assert [f["attributes"]["OBJECTID"] for f in value["features"]] == list(range(1, 401))


def test_a_service_in_the_root_folder(api):
    from controlplane.models import GPServiceTask

    service = GPService.objects.create(folder="", name="Tools", description="Root tools",
                                       execution_type="esriExecutionTypeAsynchronous")
    GPServiceTask.objects.create(service=service, process_id="echo", position=0)
    root = api.get(ROOT)
    assert {"name": "Tools", "type": "GPServer"} in root["services"] and root["folders"] == ["Honua"]
    assert api.get(f"{ROOT}/Tools/GPServer")["tasks"] == ["echo"]
    job = api.post(f"{ROOT}/Tools/GPServer/echo/submitJob", string_input="root")["jobId"]
    from controlplane.tasks import run_execute

    run_execute(str(translate.run_id_of(job)))
    assert api.get(f"{ROOT}/Tools/GPServer/jobs/{job}")["jobStatus"] == "esriJobSucceeded"
    assert api.get(f"{ROOT}/Tools/GPServer/echo/jobs/{job}/results/string_input")["value"] == "root"
    assert "Tools" in api.html(ROOT) and 'href="/arcgis/rest/services/Tools/GPServer?f=html"' in api.html(ROOT)
