"""GPServer jobs: submitJob -> jobs/<id> -> results -> inputs -> cancel -> delete, messages,
progress, failures, and every job error as an HTTP 200 envelope."""

from __future__ import annotations

import json

import pytest

from controlplane.contracts import RunStatus
from controlplane.models import ProcessRun
from controlplane.tasks import run_execute
from gpserver import translate
from tests.gpserver.support import ANALYSIS, GEOMETRY, assert_error, point_featureset, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]

DISTANCE = {"distance": 100, "units": "esriMeters"}
BUFFER = f"{ANALYSIS}/buffer"


def _submit(api, task=BUFFER, **params):
    params = params or {"features": point_featureset((10, 50), (11, 51), name="p"), "distance": DISTANCE}
    doc = api.post(f"{task}/submitJob", **params)
    assert set(doc) == {"jobId", "jobStatus"}, doc
    return doc["jobId"]


def _run(job):
    assert run_execute(str(translate.run_id_of(job))) == "done"


def test_submit_poll_results_inputs(api):
    job = _submit(api)
    queued = api.get(f"{BUFFER}/jobs/{job}")
    assert queued["jobStatus"] == "esriJobSubmitted" and "results" not in queued
    assert queued["progress"]["percent"] == 0
    assert_error(api.get(f"{BUFFER}/jobs/{job}/results/result"), 404, "not ready")
    _run(job)
    done = api.get(f"{BUFFER}/jobs/{job}", returnMessages="True")
    assert done["jobStatus"] == "esriJobSucceeded" and done["progress"]["percent"] == 100
    assert done["results"] == {"result": {"paramUrl": "results/result"}}
    assert done["inputs"]["features"] == {"paramUrl": "inputs/features"}
    assert done["messages"] and all(m["type"].startswith("esriJobMessageType") for m in done["messages"])
    assert "messages" not in api.get(f"{BUFFER}/jobs/{job}", returnMessages="false")
    # The service-level job URL shows the same job.
    assert api.get(f"{ANALYSIS}/jobs/{job}") == api.get(f"{BUFFER}/jobs/{job}")
    result = api.get(f"{BUFFER}/jobs/{job}/{done['results']['result']['paramUrl']}")
    assert result["paramName"] == "result" and result["dataType"] == "GPFeatureRecordSetLayer"
    features = result["value"]["features"]
    assert [f["attributes"] for f in features] == [{"OBJECTID": 1, "name": "p"}, {"OBJECTID": 2, "name": "p"}]
    assert all("rings" in f["geometry"] for f in features)
    assert api.get(f"{ANALYSIS}/jobs/{job}/results/result") == result
    features_in = api.get(f"{BUFFER}/jobs/{job}/inputs/features")
    assert features_in["dataType"] == "GPFeatureRecordSetLayer"
    assert [f["geometry"] for f in features_in["value"]["features"]] == [{"x": 10, "y": 50}, {"x": 11, "y": 51}]
    assert api.get(f"{BUFFER}/jobs/{job}/inputs/distance")["value"] == DISTANCE
    assert api.get(f"{BUFFER}/jobs/{job}/inputs/method")["value"] == "auto"  # the default it ran with
    assert_error(api.get(f"{BUFFER}/jobs/{job}/inputs/nope"), 404)
    assert_error(api.get(f"{BUFFER}/jobs/{job}/results/nope"), 404)


def test_job_html_pages(api):
    job = _submit(api)
    _run(job)
    page = api.html(f"{BUFFER}/jobs/{job}")
    assert "esriJobSucceeded" in page and f"{BUFFER}/jobs/{job}/results/result?f=html" in page
    assert "GPFeatureRecordSetLayer" in api.html(f"{BUFFER}/jobs/{job}/results/result")


def test_unknown_and_misplaced_jobs_are_errors(api):
    for bad in ("jnope", "j" + "0" * 32, "not-a-job"):
        assert_error(api.get(f"{BUFFER}/jobs/{bad}"), 404, "no job")
        assert_error(api.get(f"{BUFFER}/jobs/{bad}/cancel"), 404)
        assert_error(api.get(f"{BUFFER}/jobs/{bad}/results/result"), 404)
    job = _submit(api)
    assert_error(api.get(f"{ANALYSIS}/voronoi/jobs/{job}"), 404, "no job")  # another task's job
    voronoi = _submit(api, f"{ANALYSIS}/voronoi", features=point_featureset((1, 1), (2, 3), (4, 1)))
    assert_error(api.get(f"{GEOMETRY}/jobs/{voronoi}"), 404, "no job")  # not a task of this service


def test_cancel_a_queued_job_by_get_and_post(api, client):
    job = _submit(api)
    cancelled = api.get(f"{BUFFER}/jobs/{job}/cancel")  # arcgis-python sends GET
    assert cancelled == {"jobId": job, "jobStatus": "esriJobCancelled"}
    status = api.get(f"{BUFFER}/jobs/{job}")
    assert status["jobStatus"] == "esriJobCancelled" and "results" not in status
    assert_error(api.get(f"{BUFFER}/jobs/{job}/results/result"), 400, "cancelled")
    other = _submit(api)
    assert api.post(f"{BUFFER}/jobs/{other}/cancel")["jobStatus"] == "esriJobCancelled"
    assert api.post(f"{ANALYSIS}/jobs/{_submit(api)}/cancel")["jobStatus"] == "esriJobCancelled"


def test_cancel_a_finished_job_is_an_error(api):
    job = _submit(api)
    _run(job)
    assert_error(api.get(f"{BUFFER}/jobs/{job}/cancel"), 409, "finished")
    assert api.get(f"{BUFFER}/jobs/{job}")["jobStatus"] == "esriJobSucceeded"


def test_cancel_a_running_job(api, worker):
    job = _submit(api, f"{ANALYSIS}/echo", string_input="slow", pause="5")
    worker(str(translate.run_id_of(job)))
    wait_for(lambda: api.get(f"{ANALYSIS}/echo/jobs/{job}")["jobStatus"] == "esriJobExecuting")
    assert api.get(f"{ANALYSIS}/echo/jobs/{job}/cancel")["jobStatus"] in ("esriJobCancelling", "esriJobCancelled")
    wait_for(lambda: api.get(f"{ANALYSIS}/echo/jobs/{job}")["jobStatus"] == "esriJobCancelled")
    messages = api.get(f"{ANALYSIS}/echo/jobs/{job}")["messages"]
    assert any("Cancel" in m["description"] for m in messages)


def test_progress_while_running(api, worker):
    job = _submit(api, f"{ANALYSIS}/echo", string_input="slow", pause="1.5")
    worker(str(translate.run_id_of(job)))
    wait_for(lambda: api.get(f"{ANALYSIS}/echo/jobs/{job}")["progress"]["percent"] > 0)
    progress = api.get(f"{ANALYSIS}/echo/jobs/{job}")["progress"]
    assert progress["type"] == "default" and 0 < progress["percent"] <= 100
    wait_for(lambda: api.get(f"{ANALYSIS}/echo/jobs/{job}")["jobStatus"] == "esriJobSucceeded")


def test_delete_a_finished_job(api):
    job = _submit(api)
    _run(job)
    assert api.post(f"{BUFFER}/jobs/{job}/delete") == {"jobId": job, "jobStatus": "esriJobDeleted"}
    assert api.get(f"{BUFFER}/jobs/{job}")["jobStatus"] == "esriJobDeleted"
    error = assert_error(api.get(f"{BUFFER}/jobs/{job}/results/result"), 404, "removed")
    assert f"job {job}" in error["message"]
    run = ProcessRun.objects.get(id=translate.run_id_of(job))
    assert run.dismissed_at is not None and run.outputs is None


def test_delete_a_queued_job_cancels_it(api):
    job = _submit(api)
    assert api.get(f"{BUFFER}/jobs/{job}/delete")["jobStatus"] == "esriJobCancelled"
    assert ProcessRun.objects.get(id=translate.run_id_of(job)).status == RunStatus.CANCELLED.value


def test_a_failed_job(api):
    job = _submit(api, f"{GEOMETRY}/project", features=point_featureset((1, 1)), target_srid=json.dumps({"wkid": 999999}))
    _run(job)
    status = api.get(f"{GEOMETRY}/project/jobs/{job}")
    assert status["jobStatus"] == "esriJobFailed" and "results" not in status
    errors = [m for m in status["messages"] if m["type"] == "esriJobMessageTypeError"]
    assert errors and "999999" in errors[-1]["description"]
    error = assert_error(api.get(f"{GEOMETRY}/project/jobs/{job}/results/result"))
    assert error["message"].startswith("Job failed:") and "999999" in error["message"]
    assert error["details"]  # the run's messages


def test_submit_job_of_a_sync_only_process_runs_it_at_once(api, monkeypatch):
    from controlplane.contracts import ExecutionMode
    from controlplane.services import execution

    monkeypatch.setattr(execution, "schedule_mode", lambda *, resolved, requested: ExecutionMode.SYNC)
    job = _submit(api)
    assert api.get(f"{BUFFER}/jobs/{job}")["jobStatus"] == "esriJobSucceeded"
