"""Tenant isolation in the job browser: a member of tenant B, signed in, gets "not found" for
tenant A's job on every job URL, answered exactly as for a job that does not exist, and sees
nothing of A on the other pages. Every URL of ``browser.urls`` has a case here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern

from controlplane.contracts import RunStatus
from controlplane.models import ProcessRun
from tests.browser.support import APP, buffer_form, job_id_of
from tests.identity import PASSWORD, member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("echo_tier", "fast_passwords")]

SECRET = "acme secret place"
Case = Callable[[Client, str], Any]


def _get(path: str) -> Case:
    return lambda http, job: http.get(APP + path.replace("<id>", job))


def _post(path: str, data: dict[str, str] | None = None) -> Case:
    return lambda http, job: http.post(APP + path.replace("<id>", job), data or {})


# url name -> (is it about a job, the call)
CASES: dict[str, tuple[bool, Case]] = {
    "browser:home": (False, _get("")),
    "browser:job-list": (False, _get("jobs/?status=succeeded")),
    "browser:job": (True, _get("jobs/<id>/")),
    "browser:job-status": (True, _get("jobs/<id>/status")),
    "browser:job-cancel": (True, _post("jobs/<id>/cancel")),
    "browser:job-dismiss": (True, _post("jobs/<id>/dismiss")),
    "browser:job-output": (True, _get("jobs/<id>/outputs/result?f=geojson")),
    "browser:process-list": (False, _get("processes/")),
    "browser:process": (False, _post("processes/buffer/", buffer_form(distance="5"))),
}


def test_every_browser_url_has_a_case():
    from browser import urls

    names = set()
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern) and pattern.name, pattern
        names.add("browser:" + pattern.name)
    assert set(CASES) == names


@pytest.fixture
def a_job(client: Client) -> str:
    """A finished buffer job of tenant acme, with a secret in its features' properties."""
    member("acme", "alice")
    alice = Client()
    assert alice.login(username="alice", password=PASSWORD)
    form = buffer_form()
    response = alice.post(f"{APP}processes/buffer/", {**form, "in_features": form["in_features"].replace("Aloha Tower", SECRET)})
    assert response.status_code == 303
    job = job_id_of(response)
    assert ProcessRun.objects.get(id=job).status == RunStatus.SUCCEEDED.value
    return job


@pytest.fixture
def bob(a_job: str) -> Client:
    member("globex", "bob", role="admin")
    http = Client()
    assert http.login(username="bob", password=PASSWORD)
    return http


def _normal(response: Any, some_id: str) -> tuple[int, str]:
    text = response.content.decode(errors="replace").replace(some_id, "<id>")
    # Each page masks the CSRF token afresh (BREACH): not a difference between the answers.
    return response.status_code, re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "<csrf>", text)


@pytest.mark.parametrize("name", CASES)
def test_tenant_b_finds_nothing_of_tenant_a(bob, a_job, name):
    about_a_job, call = CASES[name]
    if not about_a_job:
        response = call(bob, a_job)
        assert response.status_code in (200, 302, 303), (name, response.status_code)
        text = response.content.decode(errors="replace")
        if response.status_code == 303:  # B's own run: its page has nothing of A either
            text = bob.get(response["Location"]).content.decode()
        assert a_job not in text and SECRET not in text, name
        return
    unknown = str(uuid.uuid4())
    theirs, nothing = call(bob, a_job), call(bob, unknown)
    assert _normal(theirs, a_job) == _normal(nothing, unknown), name
    assert theirs.status_code == 404 and SECRET not in theirs.content.decode()


def test_tenant_as_job_is_intact_after_bs_attempts(bob, a_job):
    for about_a_job, call in CASES.values():
        if about_a_job:
            call(bob, a_job)
    run = ProcessRun.objects.get(id=a_job)
    assert run.status == RunStatus.SUCCEEDED.value and run.dismissed_at is None and run.outputs
