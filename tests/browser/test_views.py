"""The job browser through Django's test client: sign-in, the job list and its filters, the
job page and its poll, the run form (sync and async), downloads, cancel and dismiss, and
tenant isolation."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client

from controlplane.contracts import RunStatus
from controlplane.models import ProcessRun
from controlplane.tasks import run_execute
from tests.browser.support import APP, POINTS, buffer_form, echo_form, job_id_of
from tests.identity import PASSWORD, member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("echo_tier")]


def _submit(http: Client, process: str, form: dict[str, str]) -> str:
    response = http.post(f"{APP}processes/{process}/", form)
    assert response.status_code == 303, response.content.decode()[:2000]
    assert response["Location"].startswith(f"{APP}jobs/")
    return job_id_of(response)


def test_pages_need_a_sign_in(client, alice):
    for path in ("", "jobs/", "processes/", "processes/buffer/", f"jobs/{uuid.uuid4()}/"):
        response = client.get(APP + path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    text = page.content.decode()
    assert '<label for="id_username">' in text and '<label for="id_password">' in text
    signed = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": f"{APP}processes/"})
    assert signed.status_code == 302 and signed["Location"] == f"{APP}processes/"
    assert client.get(APP + "processes/").status_code == 200
    assert client.get(APP)["Location"] == f"{APP}jobs/"


def test_process_page_describes_the_inputs_and_labels_every_control(signed_in):
    page = signed_in.get(f"{APP}processes/buffer/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Buffer" in text and "Segments per quarter circle" in text
    controls = re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"', text)
    hidden = re.findall(r'<input type="hidden"[^>]*>', text)
    assert hidden == [] or all("csrfmiddlewaretoken" in h for h in hidden)
    assert {"id_in_features", "id_in_features_file", "id_in_distance", "id_in_distance_unit", "id_in_dissolve",
            "mode_sync", "mode_async"} <= set(controls)
    for control in controls:
        assert f'<label for="{control}"' in text, control
    assert '<button type="submit" id="run-button">' in text


def test_a_sync_run_lands_on_its_job_page_with_outputs_map_tiers_and_cost(signed_in):
    job = _submit(signed_in, "buffer", buffer_form("sync"))
    run = ProcessRun.objects.get(id=job)
    assert run.surface == "browser" and run.mode == "sync" and run.status == RunStatus.SUCCEEDED.value
    assert run.inputs["distance"] == {"value": 100.0, "unit": "meter"}
    page = signed_in.get(f"{APP}jobs/{job}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-status="succeeded"' in text and 'value="100"' in text
    assert "3 features (Point), EPSG:4326" in text and "3 features (Polygon), EPSG:4326" in text
    # The tier used and why the other was skipped (inline data: the postgis tier is not local).
    assert '<strong id="tier-used">inprocess</strong>' in text
    assert "skipped" in text and "data locality" in text
    assert "estimated 1.0" in text and "Cost units" in text
    layers = json.loads(re.search(r'<script id="map-data" type="application/json">(.*?)</script>', text, re.S).group(1))
    assert [(x["role"], x["name"], len(x["geojson"]["features"])) for x in layers] == [
        ("input", "features", 3), ("output", "result", 3)
    ]
    assert f'href="{APP}jobs/{job}/outputs/result?f=geojson"' in text
    assert f'href="{APP}jobs/{job}/outputs/result?f=esrijson"' in text
    assert "Dismiss job" in text and "Cancel job" not in text


def test_downloads_geojson_and_esri_json(signed_in):
    job = _submit(signed_in, "buffer", buffer_form("sync"))
    geo = signed_in.get(f"{APP}jobs/{job}/outputs/result", {"f": "geojson"})
    assert geo.status_code == 200 and geo["Content-Type"] == "application/geo+json"
    assert geo["Content-Disposition"] == f'attachment; filename="buffer-{job[:8]}-result.geojson"'
    doc = json.loads(geo.content)
    assert doc["type"] == "FeatureCollection" and "srid" not in doc
    assert [f["properties"]["name"] for f in doc["features"]] == [f["properties"]["name"] for f in POINTS["features"]]
    assert {f["geometry"]["type"] for f in doc["features"]} == {"Polygon"}
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    # 100 m around Aloha Tower: about 0.00097 degrees of longitude at 21.3 degrees north.
    lons = [p[0] for p in ring]
    assert 0.0018 < max(lons) - min(lons) < 0.0021
    esri = signed_in.get(f"{APP}jobs/{job}/outputs/result", {"f": "esrijson"})
    assert esri.status_code == 200 and esri["Content-Type"] == "application/json"
    fs = json.loads(esri.content)
    assert fs["geometryType"] == "esriGeometryPolygon" and fs["spatialReference"]["wkid"] == 4326
    assert len(fs["features"]) == 3 and fs["features"][0]["attributes"]["name"] == "Aloha Tower"
    assert "rings" in fs["features"][0]["geometry"]
    bad = signed_in.get(f"{APP}jobs/{job}/outputs/nothing", {"f": "geojson"})
    assert bad.status_code == 404 and b"no output" in bad.content


def test_async_run_queued_then_polled_to_success(signed_in):
    job = _submit(signed_in, "buffer", buffer_form("async"))
    poll = signed_in.get(f"{APP}jobs/{job}/status")
    assert poll.status_code == 200 and poll["Cache-Control"] == "no-store"
    assert poll.json()["status"] == "queued" and poll.json()["finished"] is False
    page = signed_in.get(f"{APP}jobs/{job}/").content.decode()
    assert "Cancel job" in page and "The outputs appear here when the job has finished." in page
    run_execute(job)
    state = signed_in.get(f"{APP}jobs/{job}/status").json()
    assert state["status"] == "succeeded" and state["progress"] == 100 and state["finished"] is True
    assert state["badge"] == {"label": "Succeeded", "css": "succeeded", "status": "succeeded"}
    assert any(m["text"] == "Succeeded." for m in state["messages"])


def test_a_refused_run_shows_the_form_again_with_the_reason(signed_in):
    response = signed_in.post(f"{APP}processes/buffer/", buffer_form(distance="far"))
    assert response.status_code == 400
    text = response.content.decode()
    assert 'role="alert"' in text and "Distance: &#x27;far&#x27; is not a number" in text
    assert 'value="far"' in text  # the form keeps what was typed
    broken = signed_in.post(f"{APP}processes/buffer/", {**buffer_form(), "in_features": "{not json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.content.decode()
    missing = signed_in.post(f"{APP}processes/buffer/", {**buffer_form(), "in_features": ""})
    assert missing.status_code == 400 and "features" in missing.content.decode()
    assert not ProcessRun.objects.exists()


def test_geojson_from_a_file_and_a_bad_process(signed_in):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("points.geojson", json.dumps(POINTS).encode(), content_type="application/geo+json")
    job = _submit(signed_in, "buffer", {**buffer_form(), "in_features": "", "in_features_file": upload})
    assert len(ProcessRun.objects.get(id=job).inputs["features"]["features"]) == 3
    assert signed_in.get(f"{APP}processes/no-such/").status_code == 404


def test_cancel_and_dismiss(signed_in):
    job = _submit(signed_in, "echo", echo_form("async", pause="30"))
    cancelled = signed_in.post(f"{APP}jobs/{job}/cancel")
    assert cancelled.status_code == 303 and cancelled["Location"] == f"{APP}jobs/{job}/"
    assert ProcessRun.objects.get(id=job).status == RunStatus.CANCELLED.value  # it had not started
    page = signed_in.get(f"{APP}jobs/{job}/").content.decode()
    assert "Cancellation requested" in page and 'data-status="cancelled"' in page and "Cancel job" not in page
    done = _submit(signed_in, "buffer", buffer_form("sync"))
    dismissed = signed_in.post(f"{APP}jobs/{done}/dismiss")
    assert dismissed.status_code == 303
    page = signed_in.get(f"{APP}jobs/{done}/").content.decode()
    assert "Dismissed" in page and "its results were removed" in page and "Dismiss job" not in page
    gone = signed_in.get(f"{APP}jobs/{done}/outputs/result", {"f": "geojson"})
    assert gone.status_code == 404
    # Changes need POST with the CSRF token, as any form of a browser session.
    strict = Client(enforce_csrf_checks=True)
    assert strict.login(username="alice", password=PASSWORD)
    assert strict.post(f"{APP}jobs/{job}/dismiss").status_code == 403


def test_job_list_filters_search_and_paging(signed_in, settings):
    buffered = _submit(signed_in, "buffer", buffer_form("sync"))
    echoed = _submit(signed_in, "echo", echo_form("async"))

    def listed(**query: str) -> list[str]:
        page = signed_in.get(f"{APP}jobs/", query)
        assert page.status_code == 200
        return re.findall(rf'href="{APP}jobs/([0-9a-f-]{{36}})/"', page.content.decode())

    assert listed() == [echoed, buffered]
    assert listed(status="succeeded") == [buffered]
    assert listed(status="queued") == [echoed]
    assert listed(process="echo") == [echoed]
    assert listed(surface="browser") == [echoed, buffered]
    assert listed(surface="gpserver") == []
    assert listed(after="2000-01-01", before="2999-12-31") == [echoed, buffered]
    assert listed(before="2000-01-01") == []
    assert listed(q=buffered) == [buffered]
    assert listed(q="j" + uuid.UUID(echoed).hex) == [echoed]  # GPServer's job id form
    page = signed_in.get(f"{APP}jobs/", {"q": "nonsense"}).content.decode()
    assert "is not a job id" in page and listed(q="nonsense") == []
    text = signed_in.get(f"{APP}jobs/").content.decode()
    assert 'class="badge badge-succeeded">Succeeded<' in text and 'class="badge badge-queued">Queued<' in text
    for _ in range(25):
        _submit(signed_in, "echo", echo_form("async"))
    first = signed_in.get(f"{APP}jobs/", {"process": "echo"}).content.decode()
    assert len(re.findall(rf'href="{APP}jobs/[0-9a-f-]{{36}}/"', first)) == 25
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "process=echo" in older and "offset=25" in older
    second = signed_in.get(older).content.decode()
    assert re.findall(rf'href="{APP}jobs/([0-9a-f-]{{36}})/"', second) == [echoed]
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_another_tenants_jobs_stay_hidden(signed_in, client):
    job = _submit(signed_in, "buffer", buffer_form("sync"))
    member("other", "olga", "admin")
    olga = Client()
    assert olga.login(username="olga", password=PASSWORD)
    for path in (f"jobs/{job}/", f"jobs/{job}/outputs/result?f=geojson"):
        assert olga.get(APP + path).status_code == 404
    assert olga.get(f"{APP}jobs/{job}/status").json()["error"]["code"] == "no-such-job"
    assert olga.post(f"{APP}jobs/{job}/cancel").status_code == 404
    assert job not in olga.get(f"{APP}jobs/").content.decode()
    assert ProcessRun.objects.get(id=job).status == RunStatus.SUCCEEDED.value


def test_a_viewer_reads_jobs_but_runs_nothing(signed_in):
    job = _submit(signed_in, "buffer", buffer_form("sync"))
    member("demo", "victor", "viewer")
    victor = Client()
    assert victor.login(username="victor", password=PASSWORD)
    assert job in victor.get(f"{APP}jobs/").content.decode()
    assert victor.get(f"{APP}processes/buffer/").status_code == 404  # viewers run nothing
    refused = victor.post(f"{APP}jobs/{job}/dismiss")
    assert refused.status_code == 403 and "viewer" in refused.content.decode()
