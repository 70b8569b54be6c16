"""Parity with the OGC API - Processes surface: one run, two views. A job submitted on either
surface shows the same status, results and messages on the other (same tenant)."""

from __future__ import annotations

import json
import uuid

import pytest
import shapely
from shapely.geometry import shape

from controlplane.tasks import run_execute
from gpserver import geometry as geo
from gpserver import translate
from tests.gpserver.support import ANALYSIS, GEOMETRY, assert_error, point_featureset

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]

BUFFER = f"{ANALYSIS}/buffer"
OGC = "/ogcapi"
GEOJSON_POINTS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 50]}, "properties": {"name": "a"}},
]}
OGC_STATUS = {
    "esriJobSubmitted": "accepted", "esriJobExecuting": "running", "esriJobSucceeded": "successful",
    "esriJobFailed": "failed", "esriJobCancelled": "dismissed", "esriJobDeleted": "dismissed",
}


def _ogc(client, method, path, body=None, **headers):
    headers = {"Accept": "application/json", **headers}
    if method == "post":
        return client.post(OGC + path, json.dumps(body), content_type="application/json", headers=headers)
    return getattr(client, method)(OGC + path, headers=headers)


def _ogc_submit(client) -> str:
    body = {"inputs": {"features": {"value": GEOJSON_POINTS, "mediaType": "application/geo+json"},
                       "distance": {"value": 100, "unit": "meter"}}, "response": "document"}
    response = _ogc(client, "post", "/processes/buffer/execution", body, Prefer="respond-async")
    assert response.status_code == 201, response.content
    return response["Location"].rsplit("/", 1)[-1]


def _ogc_status(client, run_id: str) -> dict:
    return json.loads(_ogc(client, "get", f"/jobs/{run_id}").content)


def _same_shape(esri_value: dict, geojson: dict) -> None:
    [feature] = esri_value["features"]
    ours = shape(geo.esri_to_geojson(feature["geometry"]))
    theirs = shape(geojson["features"][0]["geometry"])
    assert ours.equals(theirs) and abs(ours.area - theirs.area) < 1e-12
    assert feature["attributes"]["name"] == geojson["features"][0]["properties"]["name"]


def test_an_ogc_job_on_gpserver(api, client):
    run_id = _ogc_submit(client)
    job = translate.job_id(uuid.UUID(run_id))
    gp = api.get(f"{BUFFER}/jobs/{job}")
    assert OGC_STATUS[gp["jobStatus"]] == _ogc_status(client, run_id)["status"] == "accepted"
    run_execute(run_id)
    gp = api.get(f"{BUFFER}/jobs/{job}")
    ogc = _ogc_status(client, run_id)
    assert gp["jobStatus"] == "esriJobSucceeded" and ogc["status"] == "successful"
    assert gp["progress"]["percent"] == ogc["progress"] == 100
    gp_result = api.get(f"{BUFFER}/jobs/{job}/results/result")["value"]
    ogc_results = json.loads(_ogc(client, "get", f"/jobs/{run_id}/results").content)
    _same_shape(gp_result, ogc_results["result"]["value"])
    # OGC dismiss -> GPServer sees the job deleted, and no results.
    assert _ogc(client, "delete", f"/jobs/{run_id}").status_code == 200
    assert api.get(f"{BUFFER}/jobs/{job}")["jobStatus"] == "esriJobDeleted"
    assert_error(api.get(f"{BUFFER}/jobs/{job}/results/result"), 404)


def test_a_gpserver_job_on_ogc(api, client):
    job = api.post(f"{BUFFER}/submitJob", features=point_featureset((10, 50), name="a"),
                   distance={"distance": 100, "units": "esriMeters"})["jobId"]
    run_id = str(translate.run_id_of(job))
    ogc = _ogc_status(client, run_id)
    assert ogc["status"] == "accepted" and ogc["processID"] == "buffer"
    run_execute(run_id)
    assert _ogc_status(client, run_id)["status"] == "successful"
    assert api.get(f"{BUFFER}/jobs/{job}")["jobStatus"] == "esriJobSucceeded"
    ogc_results = json.loads(_ogc(client, "get", f"/jobs/{run_id}/results").content)  # a JSON document
    _same_shape(api.get(f"{BUFFER}/jobs/{job}/results/result")["value"], ogc_results["result"]["value"])
    listed = json.loads(_ogc(client, "get", "/jobs?processID=buffer").content)["jobs"]
    assert run_id in [j["jobID"] for j in listed]
    # GPServer delete -> OGC sees it dismissed.
    api.post(f"{BUFFER}/jobs/{job}/delete")
    assert _ogc_status(client, run_id)["status"] == "dismissed"


def test_cancel_on_one_surface_shows_on_the_other(api, client):
    run_id = _ogc_submit(client)
    job = "j" + run_id.replace("-", "")
    assert api.get(f"{BUFFER}/jobs/{job}/cancel")["jobStatus"] == "esriJobCancelled"
    assert _ogc_status(client, run_id)["status"] == "dismissed"


def test_failures_and_messages_match(api, client):
    project = f"{GEOMETRY}/project"
    job = api.post(f"{project}/submitJob", features=point_featureset((10, 50)),
                   target_srid=json.dumps({"wkid": 999999}))["jobId"]
    run_id = str(translate.run_id_of(job))
    run_execute(run_id)
    gp = api.get(f"{project}/jobs/{job}")
    ogc = _ogc_status(client, run_id)
    assert gp["jobStatus"] == "esriJobFailed" and ogc["status"] == "failed"
    assert gp["messages"][-1]["type"] == "esriJobMessageTypeError"
    assert gp["messages"][-1]["description"] == ogc["message"] and "999999" in ogc["message"]
    ogc_results = json.loads(_ogc(client, "get", f"/jobs/{run_id}/results").content)
    gp_results = assert_error(api.get(f"{project}/jobs/{job}/results/result"))
    assert ogc_results["detail"] in gp_results["message"]


def test_the_same_process_gives_the_same_geometry_on_both_surfaces(api, client):
    gp = api.post(f"{ANALYSIS}/buffer/execute", features=point_featureset((10, 50), name="a"),
                  distance={"distance": 100, "units": "esriMeters"})
    body = {"inputs": {"features": {"value": GEOJSON_POINTS, "mediaType": "application/geo+json"},
                       "distance": {"value": 100, "unit": "meter"}}, "response": "document"}
    ogc = json.loads(_ogc(client, "post", "/processes/buffer/execution", body).content)
    _same_shape(gp["results"][0]["value"], ogc["result"]["value"])
    assert shapely.get_num_coordinates(shape(ogc["result"]["value"]["features"][0]["geometry"])) > 8
