"""Run listing: tenant scoping, OGC dismissed semantics, paging."""

from __future__ import annotations

import pytest
from django.utils import timezone

from controlplane.contracts import Principal, RunStatus
from controlplane.models import ProcessDefinition, ProcessRun, Tenant
from controlplane.selectors import RunFilter, runs_for_tenant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog")]


def _run(tenant: Tenant, status: str, *, dismissed: bool = False) -> str:
    defn = ProcessDefinition.objects.get(process_id="echo", is_current=True)
    now = timezone.now()
    terminal = status in ("succeeded", "failed", "cancelled")
    ProcessRun.objects.create(
        tenant=tenant, principal="t", surface="ogc", process_id="echo", process_version="1",
        definition=defn, definition_revision=defn.revision, mode="async", status=status,
        resource_class="cpu_burst", inputs={}, input_hash="0" * 64,
        finished_at=now if terminal else None, started_at=now if terminal else None,
        outputs={} if status == "succeeded" else None,
        error={"code": "x", "message": "x"} if status == "failed" else None,
        dismissed_at=now if dismissed else None,
    )
    return status + ("+dismissed" if dismissed else "")


def _names(principal, **kw) -> set[str]:
    page = runs_for_tenant(principal=principal, filters=RunFilter(**kw), limit=100)
    return {f"{r.status.value}{'+dismissed' if r.dismissed else ''}" for r in page.results}


def test_dismissed_means_dismissed_or_cancelled_and_tenants_are_separate(principal):
    tenant = Tenant.objects.get(slug=principal.tenant)
    for status, dismissed in [("succeeded", False), ("succeeded", True), ("cancelled", False),
                              ("failed", False), ("queued", False)]:
        _run(tenant, status, dismissed=dismissed)
    other = Tenant.objects.create(slug="someone-else", name="Else")
    _run(other, "succeeded")
    everything = {"succeeded", "succeeded+dismissed", "cancelled", "failed", "queued"}
    assert _names(principal) == everything
    assert _names(principal, dismissed=True) == {"succeeded+dismissed", "cancelled"}
    assert _names(principal, statuses=(RunStatus.SUCCEEDED,), dismissed=False) == {"succeeded"}
    assert _names(principal, statuses=(RunStatus.SUCCEEDED,), dismissed=True) == {
        "succeeded", "succeeded+dismissed", "cancelled"}
    assert _names(Principal(tenant="someone-else")) == {"succeeded"}


def test_paging_is_newest_first_without_overlap(principal):
    tenant = Tenant.objects.get(slug=principal.tenant)
    for _ in range(7):
        _run(tenant, "succeeded")
    first = runs_for_tenant(principal=principal, filters=RunFilter(), limit=3)
    second = runs_for_tenant(principal=principal, filters=RunFilter(), limit=3, offset=3)
    third = runs_for_tenant(principal=principal, filters=RunFilter(), limit=3, offset=6)
    ids = [r.run_id for page in (first, second, third) for r in page.results]
    assert len(ids) == len(set(ids)) == 7
    created = [r.created for page in (first, second, third) for r in page.results]
    assert created == sorted(created, reverse=True)
    assert first.next_cursor == "3" and third.next_cursor is None and second.prev_offset == 0
