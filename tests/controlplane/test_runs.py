"""The ProcessRun lifecycle: guarded transitions, leases, exactly-once completion, reaping."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from controlplane.contracts import RunStatus
from controlplane.exceptions import InvalidRunTransition, NoSuchJob
from controlplane.models import AuditEvent, ProcessDefinition, ProcessRun, Tenant
from controlplane.services import runs as svc

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme")


@pytest.fixture
def definition() -> ProcessDefinition:
    return ProcessDefinition.objects.create(
        process_id="lifecycle_test",
        version="1.0.0",
        revision=1,
        spec={"id": "lifecycle_test", "handlers": {"inprocess": "x"}, "outputs": []},
        spec_sha256="0" * 64,
        title="Lifecycle",
        tier_order=["inprocess"],
        resource_class="cpu_burst",
        default_mode="async",
    )


def _fields(tenant: Tenant, definition: ProcessDefinition, **extra) -> dict:
    base = {
        "tenant": tenant,
        "principal": "tester",
        "surface": "ogc",
        "process_id": definition.process_id,
        "process_version": definition.version,
        "definition": definition,
        "definition_revision": 1,
        "mode": "async",
        "resource_class": "cpu_burst",
        "tier_order": ["inprocess"],
        "inputs": {"x": 1},
        "input_hash": "a" * 64,
    }
    base.update(extra)
    return base


def _queued() -> int:
    from django_q.models import OrmQ

    return OrmQ.objects.count()


def test_queued_run_and_its_queue_entry_commit_together(tenant, definition):
    before = _queued()
    with transaction.atomic():
        run = svc.run_create(fields=_fields(tenant, definition))
    assert run.status == RunStatus.QUEUED and _queued() == before + 1
    assert run.messages[0]["text"] == "Submitted."
    with pytest.raises(RuntimeError), transaction.atomic():
        svc.run_create(fields=_fields(tenant, definition))
        raise RuntimeError("the request failed after recording")
    assert _queued() == before + 1  # neither the run nor its queue entry survived
    assert ProcessRun.objects.count() == 1


def test_claim_is_exclusive_and_counts_attempts(tenant, definition):
    run = svc.run_create(fields=_fields(tenant, definition))
    claimed = svc.run_claim(run_id=run.id, owner="w1")
    assert claimed is not None and claimed["inputs"] == {"x": 1} and claimed["tier_order"] == ["inprocess"]
    assert claimed["spec"]["id"] == "lifecycle_test"  # the definition comes with the claim
    assert svc.run_claim(run_id=run.id, owner="w2") is None  # lease still valid
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempt_count) == ("running", "w1", 1)
    assert run.started_at is not None and run.lease_expires_at > timezone.now()


def test_completion_happens_exactly_once(tenant, definition):
    run = svc.run_create(fields=_fields(tenant, definition))
    svc.run_claim(run_id=run.id, owner="w1")
    assert svc.run_complete(run_id=run.id, owner="w2", tier="inprocess", outputs={"r": 1}) is None
    done = svc.run_complete(run_id=run.id, owner="w1", tier="inprocess", outputs={"r": 1})
    assert done is not None and done.status == "succeeded" and done.tier_used == "inprocess"
    assert svc.run_complete(run_id=run.id, owner="w1", tier="inprocess", outputs={"r": 2}) is None
    assert svc.run_fail(run_id=run.id, owner="w1", error={"code": "x", "message": "late"}) is None
    run.refresh_from_db()
    assert run.status == "succeeded" and run.outputs == {"r": 1} and run.progress == 100
    assert run.finished_at >= run.started_at and run.tier_used == "inprocess"


def test_concurrent_completion_races_have_one_winner(tenant, definition, transactional_db):
    run = svc.run_create(fields=_fields(tenant, definition))
    svc.run_claim(run_id=run.id, owner="w1")
    barrier = threading.Barrier(6)
    wins: list[bool] = []

    def complete(i: int) -> None:
        barrier.wait()
        wins.append(svc.run_complete(run_id=run.id, owner="w1", tier="inprocess", outputs={"i": i}) is not None)
        connection.close()

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    run.refresh_from_db()
    assert [m["text"] for m in run.messages].count("Succeeded.") == 1


def test_expired_lease_is_requeued_then_failed_when_attempts_run_out(tenant, definition):
    run = svc.run_create(fields=_fields(tenant, definition, max_attempts=2))
    for attempt in (1, 2):
        assert svc.run_claim(run_id=run.id, owner=f"w{attempt}")
        ProcessRun.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        queued = _queued()
        counts = svc.runs_reap_expired()
        run.refresh_from_db()
        if attempt == 1:
            assert counts["requeued"] == 1 and run.status == "queued" and run.attempt_count == 1
            assert _queued() == queued + 1  # back on the broker
        else:
            assert counts["failed"] == 1 and run.status == "failed"
            assert run.error["code"] == "worker-lost"
    assert AuditEvent.objects.filter(object_id=str(run.id), action="run.lease_expired").count() == 2


def test_expired_lease_can_be_claimed_directly(tenant, definition):
    run = svc.run_create(fields=_fields(tenant, definition))
    svc.run_claim(run_id=run.id, owner="dead")
    ProcessRun.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert svc.run_claim(run_id=run.id, owner="alive")
    assert svc.run_complete(run_id=run.id, owner="dead", tier="inprocess", outputs={}) is None
    run.refresh_from_db()
    assert run.lease_owner == "alive" and run.attempt_count == 2


def test_cancel_transitions(tenant, definition):
    queued = svc.run_create(fields=_fields(tenant, definition))
    assert svc.run_cancel(run_id=queued.id, tenant_id=tenant.pk, actor="u") == RunStatus.CANCELLED
    running = svc.run_create(fields=_fields(tenant, definition))
    svc.run_claim(run_id=running.id, owner="w")
    assert svc.run_cancel(run_id=running.id, tenant_id=tenant.pk, actor="u") == RunStatus.CANCELLING
    assert svc.run_renew_leases(owner="w", run_ids=[str(running.id)]) == {str(running.id): "cancelling"}
    assert svc.run_mark_cancelled(run_id=running.id, owner="w")
    with pytest.raises(InvalidRunTransition):
        svc.run_cancel(run_id=running.id, tenant_id=tenant.pk, actor="u")
    other = Tenant.objects.create(slug="other", name="Other")
    with pytest.raises(NoSuchJob):
        svc.run_cancel(run_id=queued.id, tenant_id=other.pk, actor="u")
    assert AuditEvent.objects.filter(action="run.cancel").count() == 2


def test_dismiss_removes_results_and_keeps_the_ledger(tenant, definition):
    run = svc.run_create(fields=_fields(tenant, definition))
    svc.run_claim(run_id=run.id, owner="w")
    svc.run_complete(run_id=run.id, owner="w", tier="inprocess", outputs={"r": 1})
    svc.run_dismiss(run_id=run.id, tenant_id=tenant.pk, actor="u")
    run.refresh_from_db()
    assert run.status == "succeeded" and run.outputs is None and run.dismissed_at is not None


def test_progress_and_messages_are_persisted(tenant, definition):
    run = svc.run_create(fields=_fields(tenant, definition))
    svc.run_claim(run_id=run.id, owner="w")
    svc.run_report(run_id=run.id, progress=140, progress_message="half", messages=[("warning", "careful")])
    run.refresh_from_db()
    assert run.progress == 100 and run.progress_message == "half"
    assert [m["type"] for m in run.messages] == ["info", "info", "warning"]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "succeeded"},  # no finished_at, no outputs
        {"status": "running"},  # no lease
        {"status": "failed", "finished_at": "now"},  # no error
        {"status": "bogus"},
        {"progress": 101},
    ],
)
def test_invariants_are_database_constraints(tenant, definition, changes):
    run = svc.run_create(fields=_fields(tenant, definition))
    values = {k: (timezone.now() if v == "now" else v) for k, v in changes.items()}
    with pytest.raises(IntegrityError), transaction.atomic():
        ProcessRun.objects.filter(id=run.id).update(**values)


def test_lease_keeper_renews_and_carries_cancellation(tenant, definition, settings, transactional_db):
    from controlplane.services.leases import LeaseKeeper, worker_identity

    settings.HONUA = {**settings.HONUA, "LEASE_SECONDS": 1.0}
    run = svc.run_create(fields=_fields(tenant, definition))
    owner = worker_identity()
    svc.run_claim(run_id=run.id, owner=owner)
    keeper = LeaseKeeper()
    event = threading.Event()
    called = threading.Event()
    keeper.register(str(run.id), event)
    keeper.on_cancel(str(run.id), called.set)
    time.sleep(1.5)
    run.refresh_from_db()
    assert run.status == "running" and run.lease_expires_at > timezone.now()  # renewed
    svc.run_cancel(run_id=run.id, tenant_id=tenant.pk, actor="u")
    assert event.wait(3) and called.wait(1)
    keeper.unregister(str(run.id))
    keeper.stop()
