"""Authentication and access in the control plane: API keys, tokens, sessions, access rules,
and who may change which job."""

from __future__ import annotations

import hashlib
import io
import re
import time
import types
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from controlplane.contracts import ExecutionRequest, Principal, Surface
from controlplane.exceptions import (
    InvalidCredentials,
    InvalidRequest,
    NoSuchJob,
    NoSuchProcess,
    NotAuthenticated,
    PermissionDenied,
)
from controlplane.models import ApiKey, AuditEvent, ProcessDefinition, ProcessRun, Tenant
from controlplane.selectors import (
    RunFilter,
    process_get,
    processes_for_principal,
    run_get,
    runs_for_tenant,
)
from controlplane.services import auth
from controlplane.services.access import anonymous_allowed, process_allowed
from controlplane.services.auth import (
    api_key_authenticate,
    api_key_revoke,
    principal_from_http,
    token_authenticate,
    token_generate,
)
from controlplane.services.execution import run_submit
from controlplane.services.jobs import job_cancel, job_dismiss
from tests.identity import (  # noqa: F401  (fast_passwords: a fixture)
    PASSWORD,
    REFERER,
    fast_passwords,
    key_of,
    member,
    principal_of,
    rule,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog", "fast_passwords")]

LOCAL = "127.0.0.1"


# --- API keys ----------------------------------------------------------------------------------


def test_api_key_is_hashed_at_rest_and_shown_once():
    alice = member("acme", "alice")
    raw = key_of(alice, "laptop")
    assert raw.startswith("hk_") and len(raw) == 3 + 12 + 1 + 43
    row = ApiKey.objects.get(name="laptop")
    secret = raw[16:]
    assert row.prefix == raw[3:15]
    assert row.key_sha256 == hashlib.sha256(raw.encode()).hexdigest()
    # Nothing stored anywhere holds the key or its secret part: not the row, not the audit trail.
    stored = " ".join(str(v) for v in ApiKey.objects.filter(pk=row.pk).values().get().values())
    audits = " ".join(str(a.after) + a.detail for a in AuditEvent.objects.filter(object_type="apikey"))
    assert secret not in stored and secret not in audits
    assert "apikey.create" in AuditEvent.objects.values_list("action", flat=True)
    principal = api_key_authenticate(raw)
    assert principal == Principal(tenant="acme", user_id=alice.user_id, username="alice", roles=("editor",))
    assert ApiKey.objects.get(pk=row.pk).last_used_at is not None


def test_api_key_with_a_wrong_secret_or_unknown_prefix_is_refused():
    raw = key_of(member("acme", "alice"))
    wrong = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    for bad in (wrong, "hk_000000000000_" + raw[16:], "hk_short", raw + "x"):
        with pytest.raises(InvalidCredentials):
            api_key_authenticate(bad)


def test_revoked_and_expired_keys_are_refused():
    alice = member("acme", "alice")
    revoked, expired, live = key_of(alice, "r"), key_of(alice, "e"), key_of(alice, "l")
    assert api_key_revoke(key_id=ApiKey.objects.get(name="r").pk) is True
    assert api_key_revoke(key_id=ApiKey.objects.get(name="r").pk) is False  # once
    ApiKey.objects.filter(name="e").update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    with pytest.raises(InvalidCredentials, match="Invalid API key") as info:
        api_key_authenticate(revoked)
    assert info.value.details == ["the API key was revoked"]
    with pytest.raises(InvalidCredentials) as info:
        api_key_authenticate(expired)
    assert info.value.details == ["the API key has expired"]
    assert api_key_authenticate(live).tenant == "acme"


@pytest.mark.parametrize("what", ["membership", "user", "tenant"])
def test_keys_die_with_their_member_user_or_tenant(what):
    alice = member("acme", "alice")
    raw = key_of(alice)
    assert api_key_authenticate(raw).user_id == alice.user_id
    target = {"membership": alice, "user": alice.user, "tenant": alice.tenant}[what]
    target.is_active = False
    target.save()
    with pytest.raises(InvalidCredentials):
        api_key_authenticate(raw)


def test_a_key_belongs_to_a_member_of_its_tenant():
    alice = member("acme", "alice")
    other = Tenant.objects.create(slug="globex", name="Globex")
    with pytest.raises(InvalidRequest):
        auth.api_key_create(tenant_id=other.pk, user_id=alice.user_id, name="x")


# --- tokens ------------------------------------------------------------------------------------


def _token(username="alice", **kw):
    kw.setdefault("client", "referer")
    kw.setdefault("referer", REFERER)
    return token_generate(username=username, password=PASSWORD, request_ip=LOCAL, **kw)


def test_token_round_trip_with_its_referer():
    alice = member("acme", "alice", role="viewer")
    issued = _token()
    now_ms = time.time() * 1000
    assert 59 * 60_000 < issued.expires_ms - now_ms <= 60 * 60_000  # HONUA_TOKEN_MINUTES
    principal = token_authenticate(issued.token, referer=REFERER, remote_addr="10.9.9.9")
    assert principal == principal_of(alice)
    # Browsers send the page as Referer: a page under the bound referer is the same app.
    assert token_authenticate(issued.token, referer=REFERER + "/maps/index.html", remote_addr=LOCAL)
    for other in ("https://evil.example.com", "https://app.example.com.evil.net", ""):
        with pytest.raises(InvalidCredentials) as info:
            token_authenticate(issued.token, referer=other, remote_addr=LOCAL)
        assert info.value.details == ["the token is bound to another referer"]


def test_token_bound_to_the_requesting_ip_or_a_given_ip():
    member("acme", "alice")
    by_request = token_generate(username="alice", password=PASSWORD, request_ip="10.0.0.1", client="requestip")
    assert token_authenticate(by_request.token, referer="", remote_addr="10.0.0.1").username == "alice"
    with pytest.raises(InvalidCredentials, match="Invalid Token"):
        token_authenticate(by_request.token, referer="", remote_addr="10.0.0.2")
    by_ip = token_generate(username="alice", password=PASSWORD, request_ip=LOCAL, client="ip", ip="192.0.2.7")
    assert token_authenticate(by_ip.token, referer="", remote_addr="192.0.2.7").username == "alice"
    with pytest.raises(InvalidCredentials):
        token_authenticate(by_ip.token, referer="", remote_addr=LOCAL)
    # Without client: the referer if one is given, else the requesting address.
    default = token_generate(username="alice", password=PASSWORD, request_ip="10.0.0.3")
    assert token_authenticate(default.token, referer="", remote_addr="10.0.0.3")
    with pytest.raises(InvalidRequest):
        token_generate(username="alice", password=PASSWORD, request_ip=LOCAL, client="referer")
    with pytest.raises(InvalidRequest):
        token_generate(username="alice", password=PASSWORD, request_ip=LOCAL, client="cookie", referer="x")


def test_token_expiry_and_its_cap(settings, monkeypatch):
    settings.HONUA = {**settings.HONUA, "TOKEN_MAX_MINUTES": 30}
    member("acme", "alice")
    issued = _token(expiration="100000")
    assert abs(issued.expires_ms - (time.time() + 30 * 60) * 1000) < 5_000
    short = _token(expiration="1")
    assert token_authenticate(short.token, referer=REFERER, remote_addr=LOCAL)
    later = time.time() + 61
    monkeypatch.setattr(auth, "time", types.SimpleNamespace(time=lambda: later))
    with pytest.raises(InvalidCredentials) as info:
        token_authenticate(short.token, referer=REFERER, remote_addr=LOCAL)
    assert info.value.details == ["the token has expired"]
    assert token_authenticate(issued.token, referer=REFERER, remote_addr=LOCAL)
    for bad in ("0", "-5", "soon"):
        with pytest.raises(InvalidRequest):
            _token(expiration=bad)


@pytest.mark.parametrize("what", ["user", "membership", "tenant", "password"])
def test_tokens_are_revoked_by_deactivation_or_a_new_password(what):
    alice = member("acme", "alice")
    issued = _token()
    assert token_authenticate(issued.token, referer=REFERER, remote_addr=LOCAL)
    if what == "password":
        alice.user.set_password("another password entirely")
        alice.user.save()
    else:
        target = {"membership": alice, "user": alice.user, "tenant": alice.tenant}[what]
        target.is_active = False
        target.save()
    with pytest.raises(InvalidCredentials) as info:
        token_authenticate(issued.token, referer=REFERER, remote_addr=LOCAL)
    assert info.value.details == ["the token was revoked"]


def test_forged_or_altered_tokens_are_refused():
    member("acme", "alice")
    token = _token().token
    payload, signature = token.rsplit(".", 1)
    for bad in (token[:-2] + "xx", "e30." + signature, payload + ".", "not-a-token", ""):
        with pytest.raises(InvalidCredentials):
            token_authenticate(bad, referer=REFERER, remote_addr=LOCAL)


def test_generate_token_refuses_bad_passwords_and_inactive_users():
    alice = member("acme", "alice")
    for username, password in (("alice", "wrong"), ("nobody", PASSWORD), ("", PASSWORD), ("alice", "")):
        with pytest.raises(InvalidRequest, match="Unable to generate token"):
            token_generate(username=username, password=password, request_ip=LOCAL)
    alice.user.is_active = False
    alice.user.save()
    with pytest.raises(InvalidRequest) as info:
        _token()
    assert info.value.details == ["Invalid username or password."]


def test_a_member_of_several_tenants_names_one():
    member("acme", "alice")
    member("globex", "alice", role="viewer")
    Tenant.objects.create(slug="initech", name="Initech")
    with pytest.raises(InvalidRequest, match="Unable") as info:
        _token()
    assert "acme, globex" in info.value.details[0]
    globex = token_authenticate(_token(tenant="globex").token, referer=REFERER, remote_addr=LOCAL)
    assert (globex.tenant, globex.roles) == ("globex", ("viewer",))
    # Another tenant answers exactly like one that does not exist.
    answers = []
    for slug in ("initech", "no-such-tenant"):
        with pytest.raises(InvalidRequest) as info:
            _token(tenant=slug)
        answers.append((info.value.message, [d.replace(slug, "<t>") for d in info.value.details]))
    assert answers[0] == answers[1]


# --- requests ----------------------------------------------------------------------------------


def _http(method="get", path="/ogcapi/processes", user=None, **headers):
    request = getattr(RequestFactory(), method)(path, headers=headers)
    request.user = user or AnonymousUser()
    return request


def test_principal_from_each_kind_of_credential():
    alice = member("acme", "alice")
    raw = key_of(alice)
    token = _token().token
    expected = principal_of(alice)
    assert principal_from_http(_http(**{"X-API-Key": raw})) == expected
    assert principal_from_http(_http(Authorization=f"Bearer {raw}")) == expected
    assert principal_from_http(_http(Authorization=f"Bearer {token}", Referer=REFERER)) == expected
    assert principal_from_http(_http(**{"X-Esri-Authorization": f"Bearer {token}", "Referer": REFERER})) == expected
    assert principal_from_http(_http(Referer=REFERER), token=token) == expected
    assert principal_from_http(_http(), token=raw) == expected
    anonymous = principal_from_http(_http(Authorization="Basic Zm9vOmJhcg=="))  # not ours: ignored
    assert anonymous == Principal(tenant="demo")


def test_bad_credentials_never_fall_back_to_anonymous():
    for headers in ({"X-API-Key": "hk_nope"}, {"Authorization": "Bearer nope"}):
        with pytest.raises(InvalidCredentials):
            principal_from_http(_http(**headers))
    with pytest.raises(InvalidCredentials):
        principal_from_http(_http(), token="nope")


def test_anonymous_callers_need_a_tenant_that_lets_them_run_something(settings):
    assert principal_from_http(_http()) == Principal(tenant="demo")
    rule("demo", "*", "anonymous", False)
    assert not anonymous_allowed(tenant_slug="demo")
    with pytest.raises(NotAuthenticated):
        principal_from_http(_http())
    rule("demo", "echo", "anonymous", True)  # one process open again: anonymous may come in
    assert principal_from_http(_http()) == Principal(tenant="demo")
    settings.HONUA = {**settings.HONUA, "ANONYMOUS": False}  # the default; a rule still wins
    assert anonymous_allowed(tenant_slug="demo")
    assert _ids(Principal(tenant="demo")) == {"echo"}


def test_a_browser_session_is_its_users_membership_and_changes_need_csrf():
    alice = member("demo", "alice")
    assert principal_from_http(_http(user=alice.user)) == principal_of(alice)
    # A logged-in user without a membership browses as the anonymous caller.
    outsider = member("acme", "bob").user
    outsider.honua_memberships.all().delete()
    assert principal_from_http(_http(user=outsider)) == Principal(tenant="demo")
    # Unsafe: a POST without Django's CSRF token is refused; GET that changes things too.
    request = _http("post", user=alice.user)
    with pytest.raises(PermissionDenied, match="CSRF"):
        principal_from_http(request)
    with pytest.raises(PermissionDenied):
        principal_from_http(_http(user=alice.user), unsafe=True)
    # A token beats the session, and needs no CSRF token.
    token = _token().token
    assert principal_from_http(_http("post", user=alice.user, Authorization=f"Bearer {token}", Referer=REFERER))


# --- access rules ------------------------------------------------------------------------------


def _ids(principal):
    return {s.id for s in processes_for_principal(principal=principal)}


def test_default_access_by_role_and_the_anonymous_setting(settings):
    everything = _ids(Principal(tenant="demo"))
    assert {"buffer", "echo"} <= everything
    editor, admin, viewer = (principal_of(member("demo", f"{n}-1", role=n)) for n in ("editor", "admin", "viewer"))
    assert _ids(editor) == _ids(admin) == everything
    assert _ids(viewer) == set()  # viewers read jobs; a rule lets them run a process
    settings.HONUA = {**settings.HONUA, "ANONYMOUS": False}
    assert _ids(Principal(tenant="demo")) == set()
    assert not anonymous_allowed(tenant_slug="demo")


def test_rules_per_tenant_role_and_process():
    member("acme", "x")
    editor = principal_of(member("acme", "ed"))
    viewer = principal_of(member("acme", "vi", role="viewer"))
    other_editor = principal_of(member("globex", "ge"))
    rule("acme", "*", "editor", False)
    rule("acme", "buffer", "editor", True)  # the process rule beats the * rule
    rule("acme", "echo", "viewer", True)
    assert _ids(editor) == {"buffer"}
    assert _ids(viewer) == {"echo"}
    assert "echo" in _ids(other_editor)  # another tenant's rules
    assert process_allowed(principal=editor, process_id="buffer")
    assert process_get(principal=editor, process_id="buffer").id == "buffer"
    with pytest.raises(NoSuchProcess) as hidden:
        process_get(principal=editor, process_id="echo")
    with pytest.raises(NoSuchProcess) as unknown:
        process_get(principal=editor, process_id="no-such-process")
    assert hidden.value.message.replace("echo", "<p>") == unknown.value.message.replace("no-such-process", "<p>")
    with pytest.raises(NoSuchProcess):
        run_submit(ExecutionRequest(process_id="echo", inputs={"string_input": "x"}, principal=editor,
                                    surface=Surface.OGC))


def test_anonymous_is_told_to_authenticate_for_a_closed_process():
    rule("demo", "echo", "anonymous", False)
    anonymous = Principal(tenant="demo")
    assert "echo" not in _ids(anonymous) and "buffer" in _ids(anonymous)
    with pytest.raises(NotAuthenticated):
        process_get(principal=anonymous, process_id="echo")
    with pytest.raises(NotAuthenticated):
        run_submit(ExecutionRequest(process_id="echo", inputs={}, principal=anonymous, surface=Surface.OGC))
    with pytest.raises(NoSuchProcess):  # what does not exist is still not found
        process_get(principal=anonymous, process_id="no-such-process")


# --- jobs --------------------------------------------------------------------------------------


def _run(tenant: str, user_id: int | None, status: str = "queued") -> uuid.UUID:
    defn = ProcessDefinition.objects.get(process_id="echo", is_current=True)
    return ProcessRun.objects.create(
        tenant=Tenant.objects.get(slug=tenant), user_id=user_id, principal="t", surface="ogc",
        process_id="echo", process_version="1", definition=defn, definition_revision=defn.revision,
        mode="async", status=status, resource_class="cpu_burst", inputs={}, input_hash="0" * 64,
    ).id


def test_viewers_read_every_job_of_the_tenant_but_change_only_their_own():
    editor = principal_of(member("acme", "ed"))
    viewer = principal_of(member("acme", "vi", role="viewer"))
    theirs, mine = _run("acme", editor.user_id), _run("acme", viewer.user_id)
    assert run_get(principal=viewer, run_id=theirs).run_id == theirs
    for action in (job_cancel, job_dismiss):
        with pytest.raises(PermissionDenied):
            action(principal=viewer, run_id=theirs)
    assert ProcessRun.objects.get(id=theirs).status == "queued"
    assert job_cancel(principal=viewer, run_id=mine).status.value == "cancelled"
    assert job_cancel(principal=editor, run_id=theirs).status.value == "cancelled"


def test_anonymous_callers_reach_only_anonymous_runs():
    alice = principal_of(member("demo", "alice"))
    members_run, anonymous_run = _run("demo", alice.user_id), _run("demo", None)
    anonymous = Principal(tenant="demo")
    assert run_get(principal=anonymous, run_id=anonymous_run)
    with pytest.raises(NoSuchJob):
        run_get(principal=anonymous, run_id=members_run)
    with pytest.raises(NoSuchJob):
        job_dismiss(principal=anonymous, run_id=members_run)
    listed = {r.run_id for r in runs_for_tenant(principal=anonymous, filters=RunFilter(), limit=50).results}
    assert anonymous_run in listed and members_run not in listed
    listed = {r.run_id for r in runs_for_tenant(principal=alice, filters=RunFilter(), limit=50).results}
    assert {anonymous_run, members_run} <= listed


def test_other_tenants_runs_are_not_found():
    acme = principal_of(member("acme", "ed"))
    globex = principal_of(member("globex", "ge"))
    run = _run("acme", acme.user_id)
    for action in (run_get, job_cancel, job_dismiss):
        with pytest.raises(NoSuchJob):
            action(principal=globex, run_id=run)
    assert ProcessRun.objects.get(id=run).status == "queued"


# --- admin and commands ------------------------------------------------------------------------


def test_the_admin_shows_a_new_key_once(admin_client):
    alice = member("acme", "alice")
    response = admin_client.post("/admin/controlplane/apikey/add/", {
        "tenant": alice.tenant_id, "user": alice.user_id, "name": "from the admin", "expires_at_0": "",
        "expires_at_1": "",
    })
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    found = re.search(rb"hk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", response.content)
    assert found, response.content[:500]
    raw = found.group(0).decode()
    key = ApiKey.objects.get(name="from the admin")
    assert key.key_sha256 == hashlib.sha256(raw.encode()).hexdigest()
    assert api_key_authenticate(raw).username == "alice"
    for page in ("/admin/controlplane/apikey/", f"/admin/controlplane/apikey/{key.pk}/change/"):
        shown = admin_client.get(page)
        assert shown.status_code == 200 and key.prefix.encode() in shown.content
        assert raw[16:].encode() not in shown.content
    admin_client.post("/admin/controlplane/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    with pytest.raises(InvalidCredentials):
        api_key_authenticate(raw)


def test_commands_make_members_and_keys():
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("carol", password=PASSWORD)
    Tenant.objects.create(slug="acme", name="Acme")
    call_command("member_set", "carol", "acme", "--role", "viewer", stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey_create", "carol", "acme", "--name", "ci", "--days", "30", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert api_key_authenticate(raw).roles == ("viewer",) and "shown once" in err.getvalue()
    assert ApiKey.objects.get(name="ci").expires_at > timezone.now() + timezone.timedelta(days=29)
    call_command("apikey_revoke", raw[:15], stdout=io.StringIO())
    with pytest.raises(InvalidCredentials):
        api_key_authenticate(raw)
    with pytest.raises(CommandError):
        call_command("member_set", "nobody", "acme", stdout=io.StringIO())
