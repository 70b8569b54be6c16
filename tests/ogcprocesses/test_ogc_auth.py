"""OGC API - Processes authentication: X-API-Key and bearer tokens, 401 with WWW-Authenticate,
403 for what a role may not do, hidden processes, browser sessions with CSRF."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from controlplane.models import ApiKey, ProcessRun
from controlplane.services.auth import api_key_revoke
from tests.identity import (  # noqa: F401  (fast_passwords: a fixture)
    REFERER,
    fast_passwords,
    gp_token,
    key_of,
    member,
    rule,
)
from tests.ogcprocesses.support import API, EXC, RAW, body, check, job_id_of, schema_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ogc", "fast_passwords")]

ECHO = {"inputs": {"string_input": "hello"}, "outputs": {"string_input": {}}}


def _get(http: Client, path: str, **headers: str) -> Any:
    return check(http.get(API + path, headers={"Accept": "application/json", **headers}), schema_for(path))


def _execute(http: Client, process: str = "echo", doc: Any = ECHO, **headers: str) -> Any:
    response = http.post(f"{API}processes/{process}/execution", json.dumps(doc), content_type="application/json",
                         headers={"Accept": "application/json", **headers})
    return check(response, "statusInfo.yaml" if response.status_code == 201 else RAW)


def test_anonymous_gets_401_where_the_tenant_wants_credentials(client):
    rule("demo", "*", "anonymous", False)
    for path in ("processes", "processes/echo", "jobs", f"jobs/{'0' * 32}", "api"):
        response = _get(client, path)
        assert response.status_code == 401, (path, response.status_code)
        assert response["WWW-Authenticate"] == 'Bearer realm="honua"'
        assert body(response)["type"] == EXC + "not-authenticated"
    response = _execute(client)
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="honua"'
    assert _get(client, "").status_code == 200  # the landing page and conformance stay public
    assert _get(client, "conformance").status_code == 200


def test_api_keys_and_bearer_tokens(client):
    rule("demo", "*", "anonymous", False)
    alice = member("demo", "alice")
    raw = key_of(alice)
    token = gp_token(client, "alice")["token"]
    for headers in ({"X-API-Key": raw}, {"Authorization": f"Bearer {raw}"},
                    {"Authorization": f"Bearer {token}", "Referer": REFERER}):
        listing = _get(client, "processes?limit=100", **headers)
        assert listing.status_code == 200 and "echo" in {p["id"] for p in body(listing)["processes"]}
        executed = _execute(client, **headers)
        assert executed.status_code == 200 and executed.content == b"hello"
    runs = ProcessRun.objects.all()
    assert {r.user_id for r in runs} == {alice.user_id} and {r.principal for r in runs} == {"alice"}


def test_invalid_revoked_or_misbound_credentials_are_401_invalid_token(client):
    alice = member("demo", "alice")
    raw = key_of(alice)
    token = gp_token(client, "alice")["token"]
    api_key_revoke(key_id=ApiKey.objects.get().pk)
    cases = [
        ({"X-API-Key": raw}, "the API key was revoked"),
        ({"X-API-Key": "hk_nope"}, "the API key is not valid"),
        ({"Authorization": "Bearer not-a-token"}, "the token is not valid"),
        ({"Authorization": f"Bearer {token}", "Referer": "https://evil.example.com"}, "another referer"),
    ]
    for headers, reason in cases:
        response = _get(client, "processes", **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"] == 'Bearer realm="honua", error="invalid_token"'
        doc = body(response)
        assert doc["type"] == EXC + "invalid-credentials" and reason in " ".join(doc["details"]), doc


def test_a_hidden_process_is_not_found_and_not_listed(client):
    alice = member("demo", "alice")
    rule("demo", "echo", "editor", False)
    headers = {"X-API-Key": key_of(alice)}
    assert "echo" not in {p["id"] for p in body(_get(client, "processes", **headers))["processes"]}
    hidden, unknown = _get(client, "processes/echo", **headers), _get(client, "processes/nothing", **headers)
    assert hidden.status_code == unknown.status_code == 404
    strip = lambda doc, name: json.dumps(doc).replace(name, "<p>")  # noqa: E731
    assert strip(body(hidden), "echo") == strip(body(unknown), "nothing")
    assert _execute(client, **headers).status_code == 404
    # Anonymous callers are told to authenticate for it instead.
    rule("demo", "echo", "anonymous", False)
    assert _get(client, "processes/echo").status_code == 401
    assert _execute(client).status_code == 401
    assert _get(client, "processes/nothing").status_code == 404


def test_a_viewer_reads_jobs_and_may_not_run_or_dismiss_others(client):
    editor = {"X-API-Key": key_of(member("demo", "ed"))}
    viewer = {"X-API-Key": key_of(member("demo", "vi", role="viewer"))}
    assert body(_get(client, "processes", **viewer))["processes"] == []
    assert _execute(client, **viewer).status_code == 404  # not listed -> not found
    job = job_id_of(_execute(client, doc={"inputs": {"string_input": "x", "pause": 30}},
                             Prefer="respond-async", **editor))
    assert _get(client, f"jobs/{job}", **viewer).status_code == 200
    listed = body(_get(client, "jobs?status=accepted", **viewer))
    assert job in {j["jobID"] for j in listed["jobs"]}, listed
    refused = check(client.delete(f"{API}jobs/{job}", headers=viewer), None)
    assert refused.status_code == 403 and body(refused)["type"] == EXC + "forbidden"
    assert "WWW-Authenticate" not in refused
    assert ProcessRun.objects.get(id=job).dismissed_at is None
    assert check(client.delete(f"{API}jobs/{job}", headers=editor), "statusInfo.yaml").status_code == 200


def test_a_browser_session_is_the_job_browser_and_posts_need_csrf():
    alice = member("demo", "alice")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    refused = browser.post(f"{API}processes/echo/execution", json.dumps(ECHO), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in body(refused)["detail"]
    page = browser.get(f"{API}jobs", {"f": "html"})  # the job browser
    assert page.status_code == 200 and "text/html" in page["Content-Type"]
    browser.get("/admin/login/")  # the browser holds the CSRF cookie from the admin
    csrf = browser.cookies["csrftoken"].value
    done = browser.post(f"{API}processes/echo/execution", json.dumps(ECHO), content_type="application/json",
                        headers={"X-CSRFToken": csrf, "Accept": "application/json"})
    assert done.status_code == 200 and done.content == b"hello"
    run = ProcessRun.objects.get()
    assert run.user_id == alice.user_id
    listing = browser.get(f"{API}jobs", headers={"Accept": "application/json"})
    assert str(run.id) in {j["jobID"] for j in body(listing)["jobs"]}
    # The anonymous caller of the same tenant does not see the member's job.
    anonymous = Client().get(f"{API}jobs", headers={"Accept": "application/json"})
    assert str(run.id) not in {j["jobID"] for j in body(anonymous)["jobs"]}
