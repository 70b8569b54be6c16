"""GPServer authentication: rest/info authInfo, tokens/generateToken, the token as parameter or
header, Esri's 499 / 498 / 403 envelopes, per-process anonymous access, browser sessions."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.test import Client

from controlplane.models import ProcessRun
from controlplane.tasks import run_execute
from gpserver import translate
from tests.gpserver.support import ANALYSIS, GEOMETRY, ROOT, assert_error, point_featureset
from tests.identity import (  # noqa: F401  (fast_passwords: a fixture)
    PASSWORD,
    REFERER,
    fast_passwords,
    gp_token,
    member,
    rule,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp", "fast_passwords")]

BUFFER = {"features": point_featureset((10, 50)), "distance": {"distance": 100, "units": "esriMeters"}}


def _get(http: Client, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    params.setdefault("f", "json")
    response = http.get(path, params, headers=headers or {})
    assert response.status_code == 200, response.status_code  # errors too: Esri's envelope
    return response.json()


def _post(http: Client, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    data = {"f": "json", **{k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}}
    response = http.post(path, data, headers=headers or {})
    assert response.status_code == 200, response.status_code
    return response.json()


def test_rest_info_advertises_the_token_service(client):
    info = _get(client, "/arcgis/rest/info")
    assert info["authInfo"] == {
        "isTokenBasedSecurity": True,
        "tokenServicesUrl": "http://testserver/arcgis/tokens/generateToken",
        "shortLivedTokenValidity": 60,
    }


def test_generate_token_by_post_and_get(client, settings):
    settings.HONUA = {**settings.HONUA, "TOKEN_MAX_MINUTES": 120}
    member("demo", "alice")
    answer = gp_token(client, "alice", expiration="90")
    assert set(answer) == {"token", "expires", "ssl"} and answer["ssl"] is False
    assert isinstance(answer["token"], str) and len(answer["token"]) > 40
    assert abs(answer["expires"] - (time.time() + 90 * 60) * 1000) < 10_000
    capped = gp_token(client, "alice", expiration="100000")
    assert abs(capped["expires"] - (time.time() + 120 * 60) * 1000) < 10_000
    by_get = _get(client, "/arcgis/tokens/generateToken", username="alice", password=PASSWORD,
                  client="requestip")
    assert set(by_get) == {"token", "expires", "ssl"}
    # tokens/ answers request=getToken the same way; over HTTPS, ssl is true.
    response = client.post("/arcgis/tokens/", {"request": "getToken", "username": "alice", "password": PASSWORD,
                                               "referer": REFERER, "f": "json"}, secure=True)
    assert response.json()["ssl"] is True


def test_generate_token_errors(client):
    member("demo", "alice")
    doc = gp_token(client, "alice", password="wrong")
    error = assert_error(doc, 400, "Unable to generate token")
    assert error["details"] == ["Invalid username or password."]
    assert_error(gp_token(client, "", password=""), 400, "'username' and 'password' must be specified")
    assert_error(gp_token(client, "alice", client="referer", referer=""), 400, "'referer' must be specified")
    assert_error(gp_token(client, "alice", expiration="soon"), 400, "minutes")


def test_a_tenant_without_anonymous_access_needs_a_token(client):
    rule("demo", "*", "anonymous", False)
    member("demo", "alice")
    for path in (ROOT, GEOMETRY, f"{GEOMETRY}/buffer", f"{ANALYSIS}/jobs/j{'0' * 32}"):
        assert_error(_get(client, path), 499, "Token Required")
    assert_error(_post(client, f"{GEOMETRY}/buffer/execute", **BUFFER), 499, "Token Required")
    assert "authInfo" in _get(client, "/arcgis/rest/info")  # always public: clients find tokens there
    token = gp_token(client, "alice")["token"]
    via_param = _get(client, ROOT, headers={"Referer": REFERER}, token=token)
    assert via_param["folders"] == ["Honua"]
    esri_header = {"X-Esri-Authorization": f"Bearer {token}", "Referer": REFERER}
    assert _get(client, ROOT, headers=esri_header) == via_param
    bearer = {"Authorization": f"Bearer {token}", "Referer": REFERER}
    assert _get(client, ROOT, headers=bearer) == via_param
    result = _post(client, f"{GEOMETRY}/buffer/execute", headers=esri_header, **BUFFER)
    assert result["results"][0]["paramName"] == "result"
    run = ProcessRun.objects.get()
    assert (run.tenant.slug, run.principal, run.user_id) == ("demo", "alice", run.user_id)
    assert run.user.username == "alice"


def test_invalid_expired_or_misbound_tokens_are_498(client):
    member("demo", "alice")
    token = gp_token(client, "alice")["token"]
    error = assert_error(_get(client, ROOT, token=token + "x"), 498, "Invalid Token")
    assert "the token is not valid" in error["details"]
    error = assert_error(_get(client, ROOT, headers={"Referer": "https://evil.example.com"}, token=token), 498)
    assert "the token is bound to another referer" in error["details"]
    assert_error(_get(client, ROOT, token=token), 498, "another referer")  # no Referer at all
    # An API key in the token parameter is checked the same way.
    assert_error(_get(client, ROOT, token="hk_000000000000_" + "a" * 43), 498, "Invalid Token")


def test_token_of_a_deactivated_member_is_498(client):
    alice = member("demo", "alice")
    token = gp_token(client, "alice")["token"]
    assert "folders" in _get(client, ROOT, headers={"Referer": REFERER}, token=token)
    alice.is_active = False
    alice.save()
    assert_error(_get(client, ROOT, headers={"Referer": REFERER}, token=token), 498, "the token was revoked")


def test_anonymous_is_told_to_authenticate_for_a_closed_task(client):
    rule("demo", "echo", "anonymous", False)
    tasks = _get(client, ANALYSIS)["tasks"]
    assert "echo" not in tasks and "buffer" in tasks
    assert_error(_get(client, f"{ANALYSIS}/echo"), 499, "Token Required")
    assert_error(_post(client, f"{ANALYSIS}/echo/submitJob", string_input="x"), 499)
    assert_error(_get(client, f"{ANALYSIS}/no-such-task"), 404, "no task")


def test_a_hidden_task_is_not_found_for_a_member(client):
    member("demo", "alice")
    rule("demo", "echo", "editor", False)
    headers = {"Authorization": f"Bearer {gp_token(client, 'alice')['token']}", "Referer": REFERER}
    assert "echo" not in _get(client, ANALYSIS, headers=headers)["tasks"]
    hidden = _get(client, f"{ANALYSIS}/echo", headers=headers)
    unknown = _get(client, f"{ANALYSIS}/nothing", headers=headers)
    assert_error(hidden, 404)
    assert json.dumps(hidden).replace("echo", "<t>") == json.dumps(unknown).replace("nothing", "<t>")
    assert_error(_post(client, f"{ANALYSIS}/echo/execute", headers=headers, string_input="x"), 404)
    # Services whose every task is hidden are hidden too.
    rule("demo", "*", "editor", False)
    assert _get(client, ROOT, headers=headers)["folders"] == []
    assert_error(_get(client, GEOMETRY, headers=headers), 404, "no GP service")


def test_a_viewer_changes_only_its_own_jobs(client):
    member("demo", "ed")
    member("demo", "vi", role="viewer")
    rule("demo", "buffer", "viewer", True)
    ed = {"X-Esri-Authorization": f"Bearer {gp_token(client, 'ed')['token']}", "Referer": REFERER}
    vi = {"X-Esri-Authorization": f"Bearer {gp_token(client, 'vi')['token']}", "Referer": REFERER}
    theirs = _post(client, f"{ANALYSIS}/buffer/submitJob", headers=ed, **BUFFER)["jobId"]
    mine = _post(client, f"{ANALYSIS}/buffer/submitJob", headers=vi, **BUFFER)["jobId"]
    assert _get(client, f"{ANALYSIS}/jobs/{theirs}", headers=vi)["jobStatus"] == "esriJobSubmitted"
    for action in ("cancel", "delete"):
        error = assert_error(_get(client, f"{ANALYSIS}/buffer/jobs/{theirs}/{action}", headers=vi), 403)
        assert error["message"] == "You do not have permissions to access this resource or perform this operation."
    assert _get(client, f"{ANALYSIS}/buffer/jobs/{mine}/cancel", headers=vi)["jobStatus"] == "esriJobCancelled"
    assert run_execute(str(translate.run_id_of(theirs))) == "done"
    assert _get(client, f"{ANALYSIS}/buffer/jobs/{theirs}", headers=ed)["jobStatus"] == "esriJobSucceeded"


def test_a_browser_session_posts_the_form_with_its_csrf_token(django_user_model):
    alice = member("demo", "alice")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    page = browser.get(f"{GEOMETRY}/buffer", {"f": "html"}).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf, "the task page's form carries Django's CSRF token"
    form = {"f": "json", **{k: json.dumps(v) for k, v in BUFFER.items()}}
    refused = browser.post(f"{GEOMETRY}/buffer/execute", form).json()
    assert_error(refused, 403, "CSRF")
    done = browser.post(f"{GEOMETRY}/buffer/execute", {**form, "csrfmiddlewaretoken": csrf.group(1)}).json()
    assert done["results"][0]["paramName"] == "result"
    assert ProcessRun.objects.get().user_id == alice.user_id
    # GET changes nothing through a session (a link on another site must not run a job).
    params = {"f": "json", **{k: json.dumps(v) for k, v in BUFFER.items()}}
    assert_error(browser.get(f"{GEOMETRY}/buffer/execute", params).json(), 403)
    # Reading needs no CSRF token.
    assert browser.get(f"{ANALYSIS}/jobs/j{ProcessRun.objects.get().id.hex}", {"f": "json"}).json()
