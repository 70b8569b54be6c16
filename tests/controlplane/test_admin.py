"""The admin for operators and tenant administrators, through its real views over HTTP: who
sees which rows, what a tenant administrator may not do, the audit of every change, and the
run actions that go through the control plane."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django_q.models import OrmQ

from controlplane.contracts import ExecutionMode, ExecutionRequest, Surface
from controlplane.models import (
    ApiKey,
    AuditEvent,
    Membership,
    PolicyRevision,
    ProcessAccess,
    ProcessDefinition,
    ProcessRun,
    Tenant,
    TenantPolicyOverride,
)
from controlplane.services.execution import run_submit
from controlplane.services.policy import policy_cache_clear
from controlplane.services.policy_versions import policy_override_set
from controlplane.services.runs import run_cancel
from controlplane.tasks import run_execute
from tests.identity import fast_passwords, key_of, member, principal_of, rule  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog", "fast_passwords")]

User = get_user_model()
ADMIN = "/admin/controlplane"


@dataclass
class World:
    """Tenants acme (A) and globex (B), their members, keys, rules, overrides and runs."""

    acme: Tenant
    globex: Tenant
    operator: Any  # a superuser, also an admin member of acme
    ada: Any  # admin of acme (staff)
    bea: Any  # admin of globex (staff)
    eddie: Any  # editor of acme (staff, but no admin membership)
    alice: Membership  # editor of acme
    bob: Membership  # editor of globex
    runs: dict[str, uuid.UUID]  # tenant slug -> a queued echo run


def _login(user: Any) -> Client:
    http = Client()
    http.force_login(user)
    return http


def _staff(membership: Membership) -> Any:
    user = membership.user
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def _submit(membership: Membership, text: str) -> uuid.UUID:
    request = ExecutionRequest(
        process_id="echo", inputs={"string_input": text}, principal=principal_of(membership),
        surface=Surface.OGC, mode=ExecutionMode.ASYNC,
    )
    return run_submit(request).run_id


@pytest.fixture
def world() -> World:
    alice, bob = member("acme", "alice"), member("globex", "bob")
    ada, bea = _staff(member("acme", "ada", role="admin")), _staff(member("globex", "bea", role="admin"))
    eddie = _staff(member("acme", "eddie", role="editor"))
    operator = User.objects.create_superuser("op", password="x")
    Membership.objects.create(user=operator, tenant=alice.tenant, role="admin")
    for team, who in (("acme", alice), ("globex", bob)):
        key_of(who, f"{team} key")
        rule(team, "echo", "viewer", True)
        policy_override_set(
            tenant_id=who.tenant_id, process_id="buffer", actor="op", tier_order=["inprocess"], cost_cap=10.0
        )
    runs = {"acme": _submit(alice, "from acme"), "globex": _submit(bob, "from globex")}
    return World(
        acme=alice.tenant, globex=bob.tenant, operator=operator, ada=ada, bea=bea, eddie=eddie,
        alice=alice, bob=bob, runs=runs,
    )


def _rows(http: Client, model: str, query: str = "") -> list[Any]:
    response = http.get(f"{ADMIN}/{model}/{query}")
    assert response.status_code == 200, (model, response.status_code)
    return list(response.context["cl"].queryset)


def ids(rows: list[Any]) -> set[Any]:
    return {row.pk for row in rows}


def _tenants_of(rows: list[Any]) -> set[int | None]:
    return {row.pk if isinstance(row, Tenant) else row.tenant_id for row in rows}


# --- who sees what -----------------------------------------------------------------------------

SCOPED = ["membership", "apikey", "processaccess", "tenantpolicyoverride", "processrun", "auditevent",
          "policyrevision", "tenant"]


def test_each_tenant_admin_sees_only_their_tenants_rows_and_operators_see_all(world):
    ada, bea, op = _login(world.ada), _login(world.bea), _login(world.operator)
    for model in SCOPED:
        assert _tenants_of(_rows(ada, model)) == {world.acme.pk}, model
        assert _tenants_of(_rows(bea, model)) == {world.globex.pk}, model
        assert {world.acme.pk, world.globex.pk} <= _tenants_of(_rows(op, model)), model
    ada_users = {u.username for u in list(ada.get("/admin/auth/user/").context["cl"].queryset)}
    assert ada_users == {"alice", "ada", "eddie", "op"}
    bea_users = {u.username for u in list(bea.get("/admin/auth/user/").context["cl"].queryset)}
    assert bea_users == {"bob", "bea"}
    # Operators' business only: the catalog, GP services, groups and the task queue.
    for url in (f"{ADMIN}/processdefinition/", f"{ADMIN}/gpservice/", "/admin/auth/group/",
                "/admin/django_q/ormq/"):
        assert ada.get(url).status_code == 403, url
        assert op.get(url).status_code == 200, url
    index = ada.get("/admin/")
    shown = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert {"ProcessRun", "Membership", "ApiKey", "User", "TenantPolicyOverride"} <= shown
    assert not shown & {"ProcessDefinition", "GPService", "Group", "OrmQ"}


def test_a_member_without_admin_role_gets_nothing(world):
    eddie = _login(world.eddie)  # staff, editor of acme
    for model in [*SCOPED, "processdefinition"]:
        assert eddie.get(f"{ADMIN}/{model}/").status_code == 403, model
    assert eddie.get("/admin/auth/user/").status_code == 403
    assert eddie.get("/admin/").context["app_list"] == []
    # Not staff at all: the admin's login page.
    assert _login(world.alice.user).get(f"{ADMIN}/processrun/").status_code == 302
    # An admin whose membership (or tenant) is deactivated is an administrator no more.
    ada = _login(world.ada)
    assert ada.get(f"{ADMIN}/processrun/").status_code == 200
    Membership.objects.filter(user=world.ada).update(is_active=False)
    assert ada.get(f"{ADMIN}/processrun/").status_code == 403
    Membership.objects.filter(user=world.bea).update(role="editor")
    assert _login(world.bea).get(f"{ADMIN}/membership/").status_code == 403


def test_another_tenants_objects_answer_404_and_stay_unchanged(world):
    bea = _login(world.bea)
    a_key = ApiKey.objects.get(tenant=world.acme)
    a_override = TenantPolicyOverride.objects.get(tenant=world.acme)
    a_rule = ProcessAccess.objects.get(tenant=world.acme)
    pages = [
        f"{ADMIN}/membership/{world.alice.pk}/change/",
        f"{ADMIN}/apikey/{a_key.pk}/change/",
        f"{ADMIN}/tenantpolicyoverride/{a_override.pk}/change/",
        f"{ADMIN}/processaccess/{a_rule.pk}/change/",
        f"{ADMIN}/processrun/{world.runs['acme']}/change/",
        f"{ADMIN}/tenant/{world.acme.pk}/change/",
        f"/admin/auth/user/{world.alice.user_id}/change/",
        f"/admin/auth/user/{world.alice.user_id}/password/",
    ]
    for page in pages:
        assert bea.get(page).status_code == 404, page
    assert bea.post(pages[0], {"role": "admin", "is_active": "on"}).status_code == 404
    assert bea.post(f"{ADMIN}/membership/{world.alice.pk}/delete/", {"post": "yes"}).status_code == 404
    assert bea.post(f"{ADMIN}/apikey/{a_key.pk}/delete/", {"post": "yes"}).status_code == 404
    assert bea.post(pages[6], {"username": "alice", "is_active": "on", "is_staff": "on"}).status_code == 404
    assert bea.post(pages[7], {"password1": "pwned-pwned-1", "password2": "pwned-pwned-1"}).status_code == 404
    # Bulk actions only reach the tenant's own rows, whatever ids are posted.
    bea.post(f"{ADMIN}/apikey/", {"action": "revoke_keys", "_selected_action": [a_key.pk]})
    bea.post(f"{ADMIN}/membership/", {"action": "delete_selected", "_selected_action": [world.alice.pk], "post": "yes"})
    world.alice.refresh_from_db()
    a_key.refresh_from_db()
    alice = User.objects.get(pk=world.alice.user_id)
    assert world.alice.role == "editor" and a_key.revoked_at is None
    assert not alice.is_staff and alice.check_password("correct horse battery staple")
    assert not AuditEvent.objects.filter(actor="bea").exists()


# --- no escalation -----------------------------------------------------------------------------


def _user_form(user: Any, **extra: str) -> dict[str, Any]:
    return {"username": user.username, "first_name": "", "last_name": "", "email": "", "is_active": "on",
            "is_staff": "on" if user.is_staff else "", **extra}


def test_a_tenant_admin_cannot_raise_their_own_rights(world):
    ada = _login(world.ada)
    group = Group.objects.create(name="ops")
    perm = Permission.objects.get(codename="change_processdefinition")
    response = ada.post(f"/admin/auth/user/{world.ada.pk}/change/", _user_form(
        world.ada, first_name="Ada", is_superuser="on", groups=str(group.pk), user_permissions=str(perm.pk),
    ))
    assert response.status_code == 302  # the names are saved; the rest is not theirs to set
    me = User.objects.get(pk=world.ada.pk)
    assert me.first_name == "Ada" and not me.is_superuser
    assert not me.groups.exists() and not me.user_permissions.exists()
    event = AuditEvent.objects.get(action="user.change", object_id=str(me.pk))
    assert event.before == {"first_name": ""} and event.after == {"first_name": "Ada"}
    # Membership in another tenant, or for another tenant's user: not among the choices.
    for data in ({"user": world.ada.pk, "tenant": world.globex.pk, "role": "admin", "is_active": "on"},
                 {"user": world.bob.user_id, "tenant": world.acme.pk, "role": "admin", "is_active": "on"}):
        refused = ada.post(f"{ADMIN}/membership/add/", data)
        assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert not Membership.objects.filter(tenant=world.globex, user=world.ada).exists()
    assert not Membership.objects.filter(tenant=world.acme, user_id=world.bob.user_id).exists()
    # Another tenant's member: neither the role nor staff status.
    assert ada.post(f"{ADMIN}/membership/{world.bob.pk}/change/", {"role": "admin", "is_active": "on"}).status_code == 404
    bob = User.objects.get(pk=world.bob.user_id)
    assert ada.post(f"/admin/auth/user/{bob.pk}/change/", _user_form(bob, is_staff="on")).status_code == 404
    assert not User.objects.get(pk=bob.pk).is_staff and Membership.objects.get(pk=world.bob.pk).role == "editor"
    # A role above admin does not exist; the choice is refused.
    refused = ada.post(f"{ADMIN}/membership/{world.alice.pk}/change/", {"role": "owner", "is_active": "on"})
    assert refused.status_code == 200 and Membership.objects.get(pk=world.alice.pk).role == "editor"


def test_a_tenant_admin_cannot_touch_operators_accounts_quotas_or_anonymous_access(world):
    ada = _login(world.ada)
    op = world.operator
    assert ada.get(f"/admin/auth/user/{op.pk}/change/").status_code == 200  # a member: visible, read-only
    assert ada.post(f"/admin/auth/user/{op.pk}/change/", _user_form(op, is_staff="")).status_code == 403
    assert ada.post(f"/admin/auth/user/{op.pk}/password/",
                    {"password1": "pwned-pwned-1", "password2": "pwned-pwned-1"}).status_code == 403
    op_membership = Membership.objects.get(user=op, tenant=world.acme)
    assert ada.post(f"{ADMIN}/membership/{op_membership.pk}/change/", {"role": "viewer", "is_active": ""}).status_code == 403
    assert ada.post(f"{ADMIN}/membership/{op_membership.pk}/delete/", {"post": "yes"}).status_code == 403
    refused = ada.post(f"{ADMIN}/apikey/add/", {"tenant": world.acme.pk, "user": op.pk, "name": "as op",
                                                "expires_at_0": "", "expires_at_1": ""})
    assert refused.status_code == 200 and not ApiKey.objects.filter(name="as op").exists()
    op.refresh_from_db()
    assert op.check_password("x") and op.is_staff
    # Nor an account that also belongs to another tenant, or carries rights beyond memberships.
    dual, grouped = member("acme", "dual"), member("acme", "grouped")
    Membership.objects.create(user=dual.user, tenant=world.globex)
    grouped.user.groups.add(Group.objects.create(name="queue readers"))
    for user in (dual.user, grouped.user):
        assert ada.post(f"/admin/auth/user/{user.pk}/change/", _user_form(user, is_staff="on")).status_code == 403
        assert not User.objects.get(pk=user.pk).is_staff
    assert Membership.objects.get(pk=op_membership.pk).role == "admin"
    # The tenant itself, quotas included, is the operator's.
    url = f"{ADMIN}/tenant/{world.acme.pk}/change/"
    assert ada.get(url).status_code == 200
    raised = {"slug": "acme", "name": "Acme", "is_active": "on", "policy": json.dumps({"max_concurrent_runs": 1000})}
    assert ada.post(url, raised).status_code == 403
    assert ada.post(f"{ADMIN}/tenant/add/", {**raised, "slug": "mine"}).status_code == 403
    world.acme.refresh_from_db()
    assert world.acme.policy == {} and not Tenant.objects.filter(slug="mine").exists()
    # Anonymous access is a server-wide choice: not offered, and existing rules stay.
    refused = ada.post(f"{ADMIN}/processaccess/add/",
                       {"tenant": world.acme.pk, "process_id": "*", "audience": "anonymous", "allowed": "on"})
    assert refused.status_code == 200 and not ProcessAccess.objects.filter(audience="anonymous").exists()
    anonymous = rule("acme", "*", "anonymous", False)
    assert ada.post(f"{ADMIN}/processaccess/{anonymous.pk}/change/",
                    {"process_id": "*", "audience": "anonymous", "allowed": "on"}).status_code == 403
    assert not ProcessAccess.objects.get(pk=anonymous.pk).allowed


def _override_form(override: TenantPolicyOverride, **values: str) -> dict[str, str]:
    form = {"enabled": "on" if override.enabled else "", "tier_order": json.dumps(override.tier_order),
            "preferred_mode": override.preferred_mode, "cost_cap": "" if override.cost_cap is None else str(override.cost_cap)}
    return {**form, **values}


def test_tenant_admin_overrides_stay_within_the_operators_bounds(world):
    ada = _login(world.ada)
    override = TenantPolicyOverride.objects.get(tenant=world.acme, process_id="buffer")
    assert override.operator_bounds == {"enabled": True, "tier_order": ["inprocess"], "resource_class": "", "cost_cap": 10.0}
    url = f"{ADMIN}/tenantpolicyoverride/{override.pk}/change/"
    version = Tenant.objects.get(pk=world.acme.pk).policy_version
    for values, message in [
        ({"cost_cap": "20"}, "at most 10, the operator&#x27;s cap"),
        ({"cost_cap": ""}, "at most 10"),
        ({"tier_order": '["postgis", "inprocess"]'}, "not among the operator&#x27;s tier order"),
        ({"tier_order": "[]"}, "the operator pinned inprocess"),
    ]:
        refused = ada.post(url, _override_form(override, **values))
        assert refused.status_code == 200 and message in refused.content.decode(), values
    # resource_class and process_id are not in the tenant administrator's form.
    ada.post(url, _override_form(override, resource_class="long_tail", process_id="echo", cost_cap="20"))
    override.refresh_from_db()
    assert (override.process_id, override.resource_class, override.cost_cap) == ("buffer", "", 10.0)
    assert Tenant.objects.get(pk=world.acme.pk).policy_version == version
    # Within the bounds: saved, versioned, audited once (by the policy service).
    done = ada.post(url, _override_form(override, cost_cap="2.5", preferred_mode="async", enabled=""))
    assert done.status_code == 302, done.content.decode()[:2000]
    override.refresh_from_db()
    assert (override.cost_cap, override.preferred_mode, override.enabled) == (2.5, "async", False)
    assert override.operator_bounds["cost_cap"] == 10.0  # the operator's bounds are unchanged
    events = AuditEvent.objects.filter(actor="ada")
    assert [e.action for e in events] == ["policy.change"]
    assert events[0].before["cost_cap"] == 10.0 and events[0].after["cost_cap"] == 2.5
    revision = PolicyRevision.objects.get(tenant=world.acme, version=version + 1)
    assert revision.actor == "ada" and revision.after["enabled"] is False
    # Back up to the operator's cap is fine; the operator's override is not theirs to remove.
    assert ada.post(url, _override_form(override, cost_cap="10", enabled="on")).status_code == 302
    assert ada.post(f"{ADMIN}/tenantpolicyoverride/{override.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TenantPolicyOverride.objects.filter(pk=override.pk).exists()
    # Their own override: only tiers the definition has, only modes it supports; removable.
    add = {"tenant": world.acme.pk, "process_id": "echo", "enabled": "on", "tier_order": '["postgis"]',
           "preferred_mode": "", "cost_cap": ""}
    refused = ada.post(f"{ADMIN}/tenantpolicyoverride/add/", add)
    assert refused.status_code == 200 and "not among the tiers of &#x27;echo&#x27;" in refused.content.decode()
    refused = ada.post(f"{ADMIN}/tenantpolicyoverride/add/", {**add, "tenant": world.globex.pk, "tier_order": "[]"})
    assert refused.status_code == 200 and not TenantPolicyOverride.objects.filter(tenant=world.globex, process_id="echo").exists()
    assert ada.post(f"{ADMIN}/tenantpolicyoverride/add/", {**add, "tier_order": '["inprocess"]'}).status_code == 302
    mine = TenantPolicyOverride.objects.get(tenant=world.acme, process_id="echo")
    assert mine.operator_bounds is None
    assert ada.post(f"{ADMIN}/tenantpolicyoverride/{mine.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not TenantPolicyOverride.objects.filter(pk=mine.pk).exists()


def test_an_override_the_operator_turned_off_stays_off(world):
    op, ada = _login(world.operator), _login(world.ada)
    override = TenantPolicyOverride.objects.get(tenant=world.acme, process_id="buffer")
    url = f"{ADMIN}/tenantpolicyoverride/{override.pk}/change/"
    turned_off = op.post(url, _override_form(override, enabled="", resource_class="long_tail", process_id="buffer"))
    assert turned_off.status_code == 302
    override.refresh_from_db()
    assert override.operator_bounds["enabled"] is False and override.operator_bounds["resource_class"] == "long_tail"
    refused = ada.post(url, _override_form(override, enabled="on"))
    assert refused.status_code == 200 and "turned &#x27;buffer&#x27; off" in refused.content.decode()
    override.refresh_from_db()
    assert not override.enabled and override.resource_class == "long_tail"


# --- users and the audit of every change --------------------------------------------------------


def test_a_tenant_admin_adds_a_member_in_one_form_audited_without_the_password(world):
    ada = _login(world.ada)
    form = {"username": "carol", "usable_password": "true", "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase", "tenant": world.acme.pk, "role": "viewer"}
    refused = ada.post("/admin/auth/user/add/", {**form, "tenant": world.globex.pk})
    assert refused.status_code == 200 and not User.objects.filter(username="carol").exists()
    refused = ada.post("/admin/auth/user/add/", {**form, "tenant": ""})
    assert refused.status_code == 200 and not User.objects.filter(username="carol").exists()
    response = ada.post("/admin/auth/user/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    carol = User.objects.get(username="carol")
    assert carol.check_password("a-long-pass-phrase") and not carol.is_staff and not carol.is_superuser
    assert Membership.objects.get(user=carol).tenant_id == world.acme.pk
    assert Membership.objects.get(user=carol).role == "viewer"
    created = AuditEvent.objects.get(action="user.create", object_id=str(carol.pk))
    assert created.actor == "ada" and created.tenant_id == world.acme.pk and created.before is None
    assert created.after["username"] == "carol" and created.after["password"] == "changed"
    assert AuditEvent.objects.get(action="membership.create", actor="ada").after["role"] == "viewer"
    # Their new member's account is theirs to edit: a new password and staff status.
    changed = ada.post(f"/admin/auth/user/{carol.pk}/password/",
                       {"password1": "another-pass-phrase", "password2": "another-pass-phrase"})
    assert changed.status_code == 302
    assert ada.post(f"/admin/auth/user/{carol.pk}/change/", _user_form(carol, is_staff="on")).status_code == 302
    carol.refresh_from_db()
    assert carol.check_password("another-pass-phrase") and carol.is_staff and not carol.is_superuser
    events = list(AuditEvent.objects.filter(action="user.change", object_id=str(carol.pk)).order_by("at", "id"))
    assert events[0].before == {"password": "[hidden]"} and events[0].after == {"password": "changed"}
    assert events[1].before == {"is_staff": False} and events[1].after == {"is_staff": True}
    everything = json.dumps([[e.before, e.after] for e in AuditEvent.objects.all()])
    assert carol.password not in everything and "pbkdf2" not in everything and "md5$" not in everything
    # And removable, with the membership that made them theirs.
    assert ada.post(f"/admin/auth/user/{carol.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=carol.pk).exists() and not Membership.objects.filter(user_id=carol.pk).exists()
    deleted = AuditEvent.objects.get(action="user.delete", object_id=str(carol.pk))
    assert deleted.tenant_id == world.acme.pk and deleted.before["username"] == "carol" and deleted.after is None
    assert deleted.before["password"] == "[hidden]"


def test_every_admin_change_is_an_audit_event_with_before_and_after(world):
    ada, op = _login(world.ada), _login(world.operator)
    # A membership's role.
    assert ada.post(f"{ADMIN}/membership/{world.alice.pk}/change/", {"role": "viewer", "is_active": "on"}).status_code == 302
    event = AuditEvent.objects.get(action="membership.change")
    assert (event.actor, event.tenant_id, event.object_id) == ("ada", world.acme.pk, str(world.alice.pk))
    assert event.before == {"role": "editor"} and event.after == {"role": "viewer"}
    # An API key: made (by the service, once), renamed, revoked, deleted; its hash never logged.
    key = ApiKey.objects.get(tenant=world.acme)
    form = {"name": "renamed", "expires_at_0": "", "expires_at_1": ""}
    assert ada.post(f"{ADMIN}/apikey/{key.pk}/change/", form).status_code == 302
    assert AuditEvent.objects.get(action="apikey.change").after == {"name": "renamed"}
    ada.post(f"{ADMIN}/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert AuditEvent.objects.get(action="apikey.revoke", actor="ada").tenant_id == world.acme.pk
    assert ada.post(f"{ADMIN}/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 302
    deleted = AuditEvent.objects.get(action="apikey.delete")
    assert deleted.after is None and deleted.before["name"] == "renamed" and deleted.before["key_sha256"] == "[hidden]"
    assert key.key_sha256 not in json.dumps([[e.before, e.after] for e in AuditEvent.objects.all()])
    # A process access rule: added, changed, removed.
    add = {"tenant": world.acme.pk, "process_id": "buffer", "audience": "viewer", "allowed": "on"}
    assert ada.post(f"{ADMIN}/processaccess/add/", add).status_code == 302
    access = ProcessAccess.objects.get(tenant=world.acme, process_id="buffer")
    assert ada.post(f"{ADMIN}/processaccess/{access.pk}/change/", {**add, "allowed": ""}).status_code == 302
    ada.post(f"{ADMIN}/processaccess/", {"action": "delete_selected", "_selected_action": [access.pk], "post": "yes"})
    actions = list(AuditEvent.objects.filter(object_type="processaccess").order_by("id").values_list("action", "before", "after"))
    assert [a for a, _, _ in actions] == ["processaccess.create", "processaccess.change", "processaccess.delete"]
    assert actions[0][2]["audience"] == "viewer" and actions[1][1:] == ({"allowed": True}, {"allowed": False})
    assert actions[2][1]["allowed"] is False and actions[2][2] is None
    # The operator: a tenant's name (its policy is audited by the policy service, once) and a
    # definition's operational fields.
    data = {"slug": "acme", "name": "Acme Corp", "is_active": "on", "policy": json.dumps({"runs_per_minute": 9})}
    assert op.post(f"{ADMIN}/tenant/{world.acme.pk}/change/", data).status_code == 302
    assert AuditEvent.objects.get(action="tenant.change").after == {"name": "Acme Corp"}
    assert AuditEvent.objects.filter(object_type="tenant_policy", actor="op").count() == 1
    defn = ProcessDefinition.objects.get(process_id="centroid", is_current=True)
    data = {"enabled": "", "is_public": "on", "tier_order": json.dumps(defn.tier_order),
            "resource_class": defn.resource_class, "default_mode": defn.default_mode, "limits": json.dumps(defn.limits)}
    assert op.post(f"{ADMIN}/processdefinition/{defn.pk}/change/", data).status_code == 302
    event = AuditEvent.objects.get(action="processdefinition.change")
    assert event.before == {"enabled": True} and event.after == {"enabled": False} and event.actor == "op"
    # Other apps' admins too (groups, the task queue).
    assert op.post("/admin/auth/group/add/", {"name": "auditors"}).status_code == 302
    assert AuditEvent.objects.get(action="group.create", actor="op").after["name"] == "auditors"
    # What a tenant administrator sees of the trail: their tenant's events only.
    seen = _rows(ada, "auditevent")
    assert seen and {e.tenant_id for e in seen} == {world.acme.pk}


# --- runs ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancel_and_rerun_go_through_the_control_plane(world):
    ada, bea = _login(world.ada), _login(world.bea)
    original = world.runs["acme"]
    assert run_execute(str(original)) == "done"
    queued_before = OrmQ.objects.count()
    response = ada.post(f"{ADMIN}/processrun/", {"action": "rerun_runs", "_selected_action": [str(original)]}, follow=True)
    assert response.status_code == 200
    new = ProcessRun.objects.exclude(id__in=world.runs.values()).get()
    old = ProcessRun.objects.get(id=original)
    assert "Re-ran 1 run(s)" in response.content.decode() and str(new.id) in response.content.decode()
    assert (new.status, new.mode, new.process_id, new.tenant_id) == ("queued", "async", "echo", world.acme.pk)
    assert new.inputs == old.inputs and new.input_hash == old.input_hash
    assert (new.principal, new.user_id) == ("ada", world.ada.pk)
    assert new.request["options"]["rerun_of"] == str(original) and new.subscriber is None
    assert OrmQ.objects.count() == queued_before + 1  # enqueued with the ledger row
    event = AuditEvent.objects.get(action="run.rerun")
    assert event.before == {"run": str(original), "status": "succeeded"}
    assert event.after == {"run": str(new.id), "status": "queued"} and event.actor == "ada"
    assert run_execute(str(new.id)) == "done"
    new.refresh_from_db()
    assert new.status == "succeeded" and new.outputs == old.outputs == {"string_input": "from acme"}
    # Cancel: the queued run of acme; B's admin reaches neither action on A's runs.
    pending = _submit(world.alice, "to cancel")
    bea.post(f"{ADMIN}/processrun/", {"action": "cancel_runs", "_selected_action": [str(pending)]})
    bea.post(f"{ADMIN}/processrun/", {"action": "rerun_runs", "_selected_action": [str(original)]})
    assert ProcessRun.objects.get(id=pending).status == "queued"
    assert ProcessRun.objects.filter(tenant=world.acme).count() == 3
    response = ada.post(f"{ADMIN}/processrun/", {"action": "cancel_runs", "_selected_action": [str(pending)]}, follow=True)
    assert "Cancellation requested for 1 run(s)" in response.content.decode()
    assert ProcessRun.objects.get(id=pending).status == "cancelled"
    cancel = AuditEvent.objects.get(action="run.cancel")
    assert (cancel.actor, cancel.before, cancel.after) == ("ada", {"status": "queued"}, {"status": "cancelled"})
    # A refusal by admission is reported, and nothing is created.
    Tenant.objects.filter(pk=world.acme.pk).update(policy={"max_concurrent_runs": 0})
    policy_cache_clear()
    response = ada.post(f"{ADMIN}/processrun/", {"action": "rerun_runs", "_selected_action": [str(original)]}, follow=True)
    assert "not re-run" in response.content.decode()
    assert ProcessRun.objects.filter(tenant=world.acme).count() == 3
    assert AuditEvent.objects.filter(action="quota.refused", tenant=world.acme).exists()  # kept


@pytest.mark.django_db(transaction=True)
def test_the_run_list_filters_columns_and_detail(world):
    op, ada = _login(world.operator), _login(world.ada)
    done, cancelled = world.runs["acme"], _submit(world.alice, "cancelled")
    assert run_execute(str(done)) == "done"
    run_cancel(run_id=cancelled, tenant_id=world.acme.pk, actor="op")
    assert ids(_rows(op, "processrun", "?status__exact=cancelled")) == {cancelled}
    assert ids(_rows(op, "processrun", "?status__exact=succeeded")) == {done}
    assert ids(_rows(op, "processrun", "?tier_used__exact=inprocess")) == {done}
    assert ids(_rows(op, "processrun", f"?tenant__id__exact={world.globex.pk}")) == {world.runs["globex"]}
    assert ids(_rows(op, "processrun", "?process_id=echo&mode__exact=async&surface__exact=ogc")) == {
        done, cancelled, world.runs["globex"]}
    assert ids(_rows(op, "processrun", "?process_id=buffer")) == set()
    year = ProcessRun.objects.get(id=done).created_at.year
    assert len(_rows(op, "processrun", f"?created_at__year={year}")) == 3
    assert ids(_rows(op, "processrun", f"?q={str(done)[:13]}")) == {done}
    assert ids(_rows(ada, "processrun", "?q=bob")) == set()  # B's principal, from A's admin
    assert ids(_rows(op, "processrun", "?q=bob")) == {world.runs["globex"]}
    assert ids(_rows(ada, "processrun", "?o=9")) == {done, cancelled}  # sorted by duration
    page = ada.get(f"{ADMIN}/processrun/").content.decode()
    assert "succeeded</span>" in page and "cancelled</span>" in page and "tenant__id__exact" not in page
    assert "tenant__id__exact" in op.get(f"{ADMIN}/processrun/").content.decode()
    detail = ada.get(f"{ADMIN}/processrun/{done}/change/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert '{\n  &quot;string_input&quot;: &quot;from acme&quot;\n}' in text  # inputs and outputs, indented
    assert "&quot;outcome&quot;: &quot;used&quot;" in text and "Submitted." in text
    assert 'name="_save"' not in text  # read-only


def test_every_page_renders_for_operators_and_tenant_admins(world):
    acme_rows = {
        "membership": world.alice.pk,
        "apikey": ApiKey.objects.get(tenant=world.acme).pk,
        "processaccess": ProcessAccess.objects.get(tenant=world.acme).pk,
        "tenantpolicyoverride": TenantPolicyOverride.objects.get(tenant=world.acme).pk,
        "processrun": world.runs["acme"],
        "auditevent": AuditEvent.objects.filter(tenant=world.acme).first().pk,
        "policyrevision": PolicyRevision.objects.filter(tenant=world.acme).first().pk,
        "tenant": world.acme.pk,
    }
    adds = ["membership", "apikey", "processaccess", "tenantpolicyoverride"]
    for who in (world.operator, world.ada):
        http = _login(who)
        pages = [f"{ADMIN}/{model}/{pk}/change/" for model, pk in acme_rows.items()]
        pages += [f"{ADMIN}/{model}/add/" for model in adds]
        pages += ["/admin/auth/user/add/", f"/admin/auth/user/{world.alice.user_id}/change/",
                  f"/admin/auth/user/{world.alice.user_id}/password/", "/admin/"]
        for page in pages:
            response = http.get(page)
            assert response.status_code == 200, (who.username, page, response.status_code)
    # A tenant administrator's forms offer their tenant and members, nobody else's.
    page = _login(world.ada).get(f"{ADMIN}/apikey/add/").content.decode()
    assert ">acme<" in page and ">globex<" not in page
    assert ">alice<" in page and ">bob<" not in page and ">op<" not in page
