"""Jobs: status, results of async jobs, result-not-ready, the job list and its filters and
paging, dismiss of queued, running and finished jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.contracts import ExecutionMode, ExecutionRequest, Principal, RunStatus, Surface
from controlplane.models import Artifact, ProcessRun
from controlplane.services.execution import run_submit
from controlplane.tasks import run_execute
from ogcprocesses import translate
from tests.ogcprocesses.support import (
    API,
    EXC,
    RAW,
    body,
    check,
    job_id_of,
    multipart,
    run_status,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc")]

RESULTS_REL = translate.REL_RESULTS


def _submit(api, inputs=None, **body_extra) -> str:
    response = api.execute({"inputs": inputs or {"string_input": "teststring"}, **body_extra},
                           prefer="respond-async")
    assert response.status_code == 201
    return job_id_of(response)


def _links(doc) -> dict[str, dict]:
    return {link["rel"]: link for link in doc["links"]}


def test_async_job_lifecycle_and_results_link(api, client):
    job = _submit(api, outputs={"string_input": {}})
    status = body(api.get(f"jobs/{job}"))
    assert status["status"] == "accepted" and "started" not in status
    assert RESULTS_REL not in _links(status)
    assert run_execute(job) == "done"
    status = body(api.get(f"jobs/{job}"))
    assert status["status"] == "successful" and status["progress"] == 100
    assert status["created"] <= status["started"] <= status["finished"] <= status["updated"]
    results = _links(status)[RESULTS_REL]
    assert results["type"] == "text/plain; charset=utf-8"
    response = check(client.get(results["href"], headers={"Accept": results["type"]}), RAW)
    assert response.status_code == 200 and b"teststring" in response.content
    assert response["Content-Type"] == results["type"]


def test_async_results_in_every_form(api):
    document = _submit(api, response="document")
    multi = _submit(api, inputs={"string_input": "teststring", "double_input": 1.5})
    for job in (document, multi):
        run_execute(job)
    doc = body(api.get(f"jobs/{document}/results", schema="results.yaml"))
    assert doc == {"string_input": "teststring"}
    assert _links(body(api.get(f"jobs/{document}")))[RESULTS_REL]["type"] == "application/json"
    parts = multipart(api.get(f"jobs/{multi}/results", schema=RAW))
    assert parts["string_input"][1] == b"teststring" and parts["double_input"][1] == b"1.5"


def test_async_reference_results_link_to_artifacts(api, client):
    job = _submit(api, outputs={"string_input": {"transmissionMode": "reference"}})
    run_execute(job)
    response = api.get(f"jobs/{job}/results", schema=RAW)
    assert response.status_code == 204
    href = response["Link"].split(">")[0].lstrip("<")
    assert b"".join(client.get(href).streaming_content) == b"teststring"


def test_results_are_not_ready_while_the_job_waits_or_runs(api, worker):
    job = _submit(api, inputs={"string_input": "teststring", "pause": 3}, outputs={"string_input": {}})
    queued = api.get(f"jobs/{job}/results")
    assert queued.status_code == 404 and body(queued)["type"] == EXC + "result-not-ready"
    worker(job)
    wait_for(lambda: run_status(job) is RunStatus.RUNNING)
    running = api.get(f"jobs/{job}/results")
    assert running.status_code == 404 and body(running)["type"] == EXC + "result-not-ready"
    wait_for(lambda: body(api.get(f"jobs/{job}"))["progress"] > 0, timeout=5)
    assert body(api.get(f"jobs/{job}"))["status"] == "running"
    wait_for(lambda: run_status(job) is RunStatus.SUCCEEDED, timeout=20)
    assert api.get(f"jobs/{job}/results", schema=RAW).content == b"teststring"


def test_unknown_jobs_are_404_no_such_job(api):
    for path in (f"jobs/invalid-job-{uuid.uuid4()}", f"jobs/invalid-job-{uuid.uuid4()}/results",
                 f"jobs/{uuid.uuid4()}", f"jobs/{uuid.uuid4()}/results"):
        response = api.get(path)
        assert response.status_code == 404 and body(response)["type"] == EXC + "no-such-job", path
    response = check(api.client.delete(f"{API}jobs/{uuid.uuid4()}"), None)
    assert response.status_code == 404 and body(response)["type"] == EXC + "no-such-job"


def test_jobs_of_another_tenant_are_invisible(api):
    other = run_submit(ExecutionRequest(
        process_id="echo", inputs={"string_input": "secret"}, principal=Principal(tenant="other"),
        surface=Surface.OGC, mode=ExecutionMode.ASYNC,
    ))
    assert api.get(f"jobs/{other.run_id}").status_code == 404
    assert api.get(f"jobs/{other.run_id}/results").status_code == 404
    assert str(other.run_id) not in str(body(api.get("jobs?status=accepted")))


def test_job_list_is_not_empty_after_runs_and_hides_accepted_by_default(api):
    finished = _submit(api)
    run_execute(finished)
    waiting = _submit(api)
    doc = body(api.get("jobs"))
    ids = [j["jobID"] for j in doc["jobs"]]
    assert finished in ids and waiting not in ids
    assert all(j["type"] == "process" and j["processID"] == "echo" for j in doc["jobs"])
    accepted = [j["jobID"] for j in body(api.get("jobs?status=accepted"))["jobs"]]
    assert accepted == [waiting]
    both = {j["jobID"] for j in body(api.get("jobs?status=accepted,successful"))["jobs"]}
    assert both == {waiting, finished}


def test_job_list_filters(api):
    ogc_job = _submit(api)
    run_execute(ogc_job)
    gp = run_submit(ExecutionRequest(
        process_id="echo", inputs={"string_input": "esri"}, principal=Principal(tenant="demo"),
        surface=Surface.GPSERVER, mode=ExecutionMode.SYNC,
    ))
    assert gp.status is RunStatus.SUCCEEDED
    every = {j["jobID"] for j in body(api.get("jobs"))["jobs"]}
    assert every == {ogc_job, str(gp.run_id)}
    assert {j["jobID"] for j in body(api.get("jobs?type=process"))["jobs"]} == {ogc_job}
    assert body(api.get("jobs?type=wps")).get("type") == EXC + "invalid-parameter-value"
    assert body(api.get("jobs?processID=buffer"))["jobs"] == []
    assert len(body(api.get("jobs?processID=buffer,echo"))["jobs"]) == 2
    assert body(api.get("jobs?status=failed"))["jobs"] == []
    assert body(api.get("jobs?status=nope")).get("type") == EXC + "invalid-parameter-value"
    now = timezone.now()
    future = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    past = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert len(body(api.get(f"jobs?datetime={past}/.."))["jobs"]) == 2
    assert body(api.get(f"jobs?datetime={future}/.."))["jobs"] == []
    assert len(body(api.get(f"jobs?datetime=../{future}"))["jobs"]) == 2
    assert len(body(api.get(f"jobs?datetime={past}/{future}"))["jobs"]) == 2
    assert len(body(api.get(f"jobs?datetime={now.date().isoformat()}"))["jobs"]) == 2


def test_job_list_duration_filters(api):
    quick = _submit(api)
    slow = _submit(api, inputs={"string_input": "x", "pause": 1.2})
    run_execute(quick)
    run_execute(slow)
    assert {j["jobID"] for j in body(api.get("jobs?minDuration=1"))["jobs"]} == {slow}
    assert {j["jobID"] for j in body(api.get("jobs?maxDuration=1"))["jobs"]} == {quick}
    assert body(api.get("jobs?minDuration=-1"))["type"] == EXC + "invalid-parameter-value"


def test_job_list_limit_and_paging_links(api, client):
    jobs = [_submit(api) for _ in range(3)]
    for job in jobs:
        run_execute(job)
    first = body(api.get("jobs?limit=2"))
    assert len(first["jobs"]) == 2
    links = _links(first)
    assert "prev" not in links and links["self"]["href"].endswith("jobs?limit=2")
    second = check(client.get(links["next"]["href"], headers={"Accept": "application/json"}), "jobList.yaml").json()
    assert len(second["jobs"]) == 1 and "next" not in _links(second)
    seen = [j["jobID"] for j in first["jobs"] + second["jobs"]]
    assert sorted(seen) == sorted(jobs) and seen[0] == jobs[-1]  # newest first
    back = check(client.get(_links(second)["prev"]["href"], headers={"Accept": "application/json"}),
                 "jobList.yaml").json()
    assert [j["jobID"] for j in back["jobs"]] == [j["jobID"] for j in first["jobs"]]
    assert len(body(api.get("jobs?limit=1"))["jobs"]) == 1
    assert body(api.get("jobs?limit=10001"))["type"] == EXC + "invalid-parameter-value"


def test_dismiss_a_queued_job(api):
    job = _submit(api)
    doc = body(api.delete(f"jobs/{job}"))
    assert doc["status"] == "dismissed" and doc["jobID"] == job
    assert run_execute(job) == "not-claimed"
    gone = api.get(f"jobs/{job}/results")
    assert gone.status_code == 404 and body(gone)["type"] == EXC + "result-not-available"


def test_dismiss_a_running_job_cancels_it(api, worker):
    job = _submit(api, inputs={"string_input": "x", "pause": 30})
    thread = worker(job)
    wait_for(lambda: run_status(job) is RunStatus.RUNNING)
    response = api.delete(f"jobs/{job}")
    assert response.status_code == 200 and body(response)["status"] == "dismissed"
    thread.join(15)  # the lease keeper carries the cancellation to echo's pause loop
    assert not thread.is_alive()
    assert run_status(job) is RunStatus.CANCELLED
    assert body(api.get(f"jobs/{job}"))["status"] == "dismissed"
    assert job in [j["jobID"] for j in body(api.get("jobs?status=dismissed"))["jobs"]]
    assert job not in [j["jobID"] for j in body(api.get("jobs?status=running"))["jobs"]]


def test_dismiss_a_finished_job_removes_its_results(api):
    job = _submit(api, outputs={"string_input": {"transmissionMode": "reference"}})
    run_execute(job)
    assert Artifact.objects.filter(run_id=job).count() == 1
    doc = body(api.delete(f"jobs/{job}"))
    assert doc["status"] == "dismissed" and RESULTS_REL not in _links(doc)
    assert Artifact.objects.filter(run_id=job).count() == 0
    assert ProcessRun.objects.get(id=job).outputs is None
    gone = api.get(f"jobs/{job}/results")
    assert gone.status_code == 404 and body(gone)["type"] == EXC + "result-not-available"
    again = api.delete(f"jobs/{job}")  # dismissing twice is harmless
    assert again.status_code == 200 and body(again)["status"] == "dismissed"
    listed = {j["jobID"]: j["status"] for j in body(api.get("jobs?status=dismissed"))["jobs"]}
    assert listed == {job: "dismissed"}
    assert job not in [j["jobID"] for j in body(api.get("jobs?status=successful"))["jobs"]]


def test_job_pages_in_html(api, client):
    job = _submit(api)
    run_execute(job)
    page = client.get(f"{API}jobs/{job}?f=html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert job in page.content.decode() and "successful" in page.content.decode()
    listing = client.get(f"{API}jobs", headers={"Accept": "text/html"})
    assert job in listing.content.decode()
