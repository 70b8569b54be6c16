"""Versioned policy: every change raises the tenant's policy version and keeps a revision;
runs record the version they were admitted under; changes reach new requests within seconds,
without a restart; the admin saves through the services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from controlplane.contracts import ExecutionMode, ExecutionRequest, Principal, Surface
from controlplane.exceptions import InvalidParameterValue, NoSuchProcess, QuotaExceeded
from controlplane.models import AuditEvent, PolicyRevision, ProcessRun, Tenant, TenantPolicyOverride
from controlplane.services.execution import run_submit
from controlplane.services.policy import CACHE_SECONDS
from controlplane.services.policy_versions import (
    policy_override_delete,
    policy_override_set,
    tenant_policy_set,
    tenant_save,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("honua_catalog")


def _request(principal: Principal, mode: ExecutionMode | None = None) -> ExecutionRequest:
    return ExecutionRequest(
        process_id="echo", inputs={"string_input": "x"}, principal=principal, surface=Surface.OGC, mode=mode
    )


def _tenant(principal: Principal) -> Tenant:
    return Tenant.objects.get(slug=principal.tenant)


@pytest.mark.django_db
def test_a_policy_change_raises_the_version_and_keeps_the_previous_values(principal):
    tenant = _tenant(principal)
    start = tenant.policy_version
    tenant_policy_set(tenant_id=tenant.pk, policy={"max_concurrent_runs": 5}, actor="alice")
    tenant_policy_set(tenant_id=tenant.pk, policy={"max_concurrent_runs": 7, "runs_per_minute": 60}, actor="bob")
    tenant_policy_set(tenant_id=tenant.pk, policy={"max_concurrent_runs": 7, "runs_per_minute": 60}, actor="bob")
    tenant.refresh_from_db()
    assert tenant.policy_version == start + 2  # the repeated value changed nothing
    assert tenant.policy == {"max_concurrent_runs": 7, "runs_per_minute": 60}
    revisions = list(PolicyRevision.objects.filter(tenant=tenant).order_by("version"))
    assert [(r.version, r.kind, r.actor) for r in revisions] == [(start + 1, "tenant", "alice"), (start + 2, "tenant", "bob")]
    assert revisions[0].before == {"policy": {}} and revisions[0].after == {"policy": {"max_concurrent_runs": 5}}
    assert revisions[1].before == {"policy": {"max_concurrent_runs": 5}}
    events = AuditEvent.objects.filter(action="policy.change", tenant=tenant).order_by("at", "id")
    assert [e.detail for e in events] == [f"policy version {start + 1}", f"policy version {start + 2}"]
    assert events[1].before == revisions[1].before and events[1].after == revisions[1].after


@pytest.mark.django_db
def test_an_invalid_policy_changes_nothing(principal):
    tenant = _tenant(principal)
    with pytest.raises(InvalidParameterValue, match="unknown key 'runs_per_hour'"):
        tenant_policy_set(tenant_id=tenant.pk, policy={"runs_per_hour": 5}, actor="alice")
    tenant.refresh_from_db()
    assert tenant.policy == {} and tenant.policy_version == 1
    assert not PolicyRevision.objects.exists()


@pytest.mark.django_db
def test_override_changes_raise_the_tenant_version(principal):
    tenant = _tenant(principal)
    created = policy_override_set(tenant_id=tenant.pk, process_id="echo", tier_order=["inprocess"], actor="op")
    assert created.version == 2
    changed = policy_override_set(tenant_id=tenant.pk, process_id="echo", preferred_mode="async", actor="op")
    assert changed.pk == created.pk and changed.version == 3
    tenant_policy_set(tenant_id=tenant.pk, policy={"runs_per_minute": 10}, actor="op")
    assert policy_override_delete(override_id=created.pk, actor="op") == 5
    assert not TenantPolicyOverride.objects.exists()
    revisions = list(PolicyRevision.objects.filter(tenant=tenant).order_by("version"))
    assert [(r.version, r.kind, r.process_id) for r in revisions] == [
        (2, "override", "echo"), (3, "override", "echo"), (4, "tenant", ""), (5, "override", "echo"),
    ]
    assert revisions[0].before is None and revisions[0].after["tier_order"] == ["inprocess"]
    assert revisions[1].before["preferred_mode"] == "" and revisions[1].after["preferred_mode"] == "async"
    assert revisions[3].after is None and revisions[3].before["preferred_mode"] == "async"
    with pytest.raises(InvalidParameterValue, match="'gpu_tier' is not a tier"):
        policy_override_set(tenant_id=tenant.pk, process_id="echo", tier_order=["gpu_tier"], actor="op")
    with pytest.raises(NoSuchProcess):
        policy_override_delete(override_id=created.pk, actor="op")
    tenant.refresh_from_db()
    assert tenant.policy_version == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_get_consecutive_versions(principal):
    tenant = _tenant(principal)
    processes = ["echo", "buffer", "centroid", "envelope", "union", "convex_hull", "densify", "simplify"]
    errors: list[BaseException] = []
    ready = threading.Barrier(len(processes))

    def change(process_id: str) -> None:
        try:
            ready.wait(timeout=30)
            policy_override_set(tenant_id=tenant.pk, process_id=process_id, preferred_mode="async", actor="op")
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    tenant.refresh_from_db()
    versions = sorted(PolicyRevision.objects.filter(tenant=tenant).values_list("version", flat=True))
    assert versions == list(range(2, 2 + len(processes))) and tenant.policy_version == 1 + len(processes)
    assert sorted(TenantPolicyOverride.objects.values_list("version", flat=True)) == versions


@pytest.mark.django_db(transaction=True)
def test_each_run_records_the_policy_version_it_was_admitted_under(principal):
    tenant = _tenant(principal)
    first = run_submit(_request(principal))
    tenant_policy_set(tenant_id=tenant.pk, policy={"runs_per_minute": 100}, actor="op")
    second = run_submit(_request(principal, ExecutionMode.ASYNC))
    policy_override_set(tenant_id=tenant.pk, process_id="echo", cost_cap=5.0, actor="op")
    third = run_submit(_request(principal))
    versions = {
        str(r.id): r.policy_version
        for r in ProcessRun.objects.filter(id__in=[first.run_id, second.run_id, third.run_id])
    }
    assert [versions[str(r.run_id)] for r in (first, second, third)] == [1, 2, 3]
    # The revision of a run's version says what changed to make it.
    assert PolicyRevision.objects.get(tenant=tenant, version=versions[str(third.run_id)]).after["cost_cap"] == 5.0


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgis://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_change_made_elsewhere_applies_to_new_requests_within_seconds(principal):
    """Another process (an operator's admin session on another host) changes the policy
    while this one keeps serving with the old policy cached; within the cache period this
    process applies the new one, without a restart."""
    tenant = _tenant(principal)
    code = (
        "import django; django.setup()\n"
        "from controlplane.services.policy_versions import tenant_policy_set\n"
        f"tenant_policy_set(tenant_id={tenant.pk}, policy={{'max_concurrent_runs': 0}}, actor='elsewhere')\n"
    )
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "honua.settings"}
    other = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    changed_at: float | None = None  # when the other process had committed (it has exited)
    admitted = 0
    started = time.monotonic()
    while True:
        if changed_at is None and other.poll() is not None:
            assert other.returncode == 0
            changed_at = time.monotonic()
        try:
            run_submit(_request(principal))
            admitted += 1
        except QuotaExceeded as exc:
            refused_at = time.monotonic()
            assert "its limit is 0" in exc.message
            break
        assert time.monotonic() - started < 120, "the change never applied"
        time.sleep(0.05)
    other.wait(60)
    changed_at = changed_at or refused_at
    assert admitted > 0  # this process was serving, with the old policy cached
    assert refused_at - changed_at <= CACHE_SECONDS + 0.5
    assert AuditEvent.objects.get(action="quota.refused").after["policy_version"] == 2
    assert set(ProcessRun.objects.values_list("policy_version", flat=True)) == {1}
    assert ProcessRun.objects.count() == admitted


# --- the admin saves through the services -----------------------------------------------------


@pytest.mark.django_db
def test_admin_tenant_policy_edits_are_versioned_and_validated(admin_client, principal):
    tenant = _tenant(principal)
    url = f"/admin/controlplane/tenant/{tenant.pk}/change/"
    data = {"slug": tenant.slug, "name": tenant.name, "is_active": "on", "policy": json.dumps({"runs_per_minute": 30})}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    assert tenant.policy == {"runs_per_minute": 30} and tenant.policy_version == 2
    revision = PolicyRevision.objects.get(tenant=tenant)
    assert revision.actor == "admin" and revision.before == {"policy": {}}
    bad = admin_client.post(url, {**data, "policy": json.dumps({"runs_per_minute": "lots"})})
    assert bad.status_code == 200 and "runs_per_minute must be a whole number" in bad.content.decode()
    renamed = admin_client.post(url, {**data, "name": "Renamed"})  # not a policy change: same version
    assert renamed.status_code == 302
    tenant.refresh_from_db()
    assert tenant.name == "Renamed" and tenant.policy_version == 2 and PolicyRevision.objects.count() == 1
    added = admin_client.post("/admin/controlplane/tenant/add/", {"slug": "acme", "name": "Acme", "is_active": "on", "policy": "{}"})
    assert added.status_code == 302
    assert PolicyRevision.objects.get(tenant__slug="acme").version == 1
    assert admin_client.get("/admin/controlplane/policyrevision/").status_code == 200
    assert admin_client.get("/admin/controlplane/tenantusage/").status_code == 200


@pytest.mark.django_db
def test_admin_override_edits_and_deletes_are_versioned(admin_client, principal):
    tenant = _tenant(principal)
    data = {
        "tenant": tenant.pk, "process_id": "echo", "enabled": "on", "tier_order": '["inprocess"]',
        "preferred_mode": "", "resource_class": "", "cost_cap": "",
    }
    response = admin_client.post("/admin/controlplane/tenantpolicyoverride/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    override = TenantPolicyOverride.objects.get()
    assert override.version == 2
    bad = admin_client.post(
        f"/admin/controlplane/tenantpolicyoverride/{override.pk}/change/", {**data, "tier_order": '["gpu"]'}
    )
    assert bad.status_code == 200 and "is not a tier" in bad.content.decode()
    response = admin_client.post(
        f"/admin/controlplane/tenantpolicyoverride/{override.pk}/change/", {**data, "cost_cap": "2.5"}
    )
    assert response.status_code == 302
    override.refresh_from_db()
    assert override.cost_cap == 2.5 and override.version == 3
    response = admin_client.post(f"/admin/controlplane/tenantpolicyoverride/{override.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.policy_version == 4
    assert list(PolicyRevision.objects.filter(tenant=tenant).order_by("version").values_list("version", "actor")) == [
        (2, "admin"), (3, "admin"), (4, "admin"),
    ]
    assert PolicyRevision.objects.get(version=4).after is None


def test_tenant_save_creates_version_one(db):
    tenant = tenant_save(tenant=Tenant(slug="fresh", name="Fresh", policy={"runs_per_minute": 5}), actor="op")
    assert tenant.policy_version == 1
    assert PolicyRevision.objects.get(tenant=tenant).after == {"policy": {"runs_per_minute": 5}}
