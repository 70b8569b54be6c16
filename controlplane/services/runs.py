"""The only writer of ProcessRun. Every status change is a guarded, atomic update."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.contracts import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ExecutionMode,
    MessageType,
    RunStatus,
)
from controlplane.exceptions import InvalidRunTransition, NoSuchJob
from controlplane.models import Artifact, ProcessRun
from controlplane.services import metrics
from controlplane.services.audit import audit_record
from controlplane.services.quotas import QuotaGuard

log = logging.getLogger("honua.runs")

_LEASED = (RunStatus.RUNNING, RunStatus.CANCELLING)
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


def _lease_delta() -> timedelta:
    return timedelta(seconds=settings.HONUA["LEASE_SECONDS"])


def _results_ttl() -> timedelta:
    return timedelta(hours=settings.HONUA["RESULT_TTL_HOURS"])


def _message(mtype: MessageType | str, text: str, at: datetime | None = None) -> dict[str, str]:
    return {"type": str(mtype), "text": text, "time": (at or timezone.now()).isoformat()}


def run_enqueue(run_id: uuid.UUID | str) -> None:
    """Hand a queued run to django-q2 (called after commit; tasks take ids only)."""
    from django_q.tasks import async_task

    async_task("controlplane.tasks.run_execute", str(run_id), task_name=f"run-{run_id}")


def run_create(
    *,
    fields: dict[str, Any],
    claim_owner: str | None = None,
    notes: Sequence[str] = (),
    guard: QuotaGuard | None = None,
) -> ProcessRun:
    """Record a new run. Async runs are queued and enqueued after commit; a sync run is
    created already claimed by the caller (``claim_owner``) so that no worker takes it.
    ``notes`` (e.g. why admission queued it) become warning messages of the run.

    With a ``guard`` (the tenant's quotas, the class capacity) the INSERT is conditional on
    its admission check, in the same statement: QuotaExceeded when refused, nothing written."""
    now = timezone.now()
    run = ProcessRun(**fields, created_at=now)
    if claim_owner:
        run.status = RunStatus.RUNNING.value
        run.lease_owner = claim_owner
        run.lease_expires_at = now + _lease_delta()
        run.started_at = now
        run.attempt_count = 1
    else:
        run.status = RunStatus.QUEUED.value
    run.messages = [_message(MessageType.INFO, "Submitted.", now)] + [
        _message(MessageType.WARNING, note, now) for note in notes
    ]
    if guard is None:
        run.save(force_insert=True)
    else:
        guard.settle(_insert_admitted(run, guard))
        run._state.adding = False
    if not claim_owner:
        _enqueue_with(run.id)
    return run


@functools.cache
def _admitted_insert_sql(guard_sql: str) -> str:
    """The guarded INSERT of a run, every column a parameter. PostgreSQL types the parameters
    of an INSERT ... SELECT by their target columns, as for VALUES; a data-modifying CTE runs
    to completion whether or not the outer query reads it."""
    fields = ProcessRun._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column or f.attname) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    return (
        f"WITH admission AS MATERIALIZED ({guard_sql}), created AS ("
        f"INSERT INTO {quote(ProcessRun._meta.db_table)} ({columns}) SELECT {values} FROM admission"
        " WHERE admission.verdict IS NULL) "
        "SELECT admission.* FROM admission"
    )


def _insert_admitted(run: ProcessRun, guard: QuotaGuard) -> tuple[Any, ...]:
    """INSERT the run if ``guard`` admits it, in one statement; returns the verdict row.

    The values are the model's own (``pre_save`` and ``get_db_prep_save`` per column, as
    ``save()`` sends them); the statement text holds no input.
    """
    values = [f.get_db_prep_save(f.pre_save(run, True), connection) for f in ProcessRun._meta.concrete_fields]
    with connection.cursor() as cur:
        cur.execute(_admitted_insert_sql(guard.sql), [*guard.params, *values])
        row = cur.fetchone()
    assert row is not None
    return tuple(row)


def _enqueue_with(run_id: uuid.UUID) -> None:
    """Queue a run together with the transaction that records it.

    With the ORM broker the queue row is written in the same transaction: both or neither,
    one commit. Any other broker is told after commit, so no worker sees an unrecorded run.
    """
    if "orm" in settings.Q_CLUSTER and not settings.Q_CLUSTER.get("sync"):
        run_enqueue(run_id)
    else:
        transaction.on_commit(lambda: run_enqueue(run_id))


_CLAIM_SQL = """
UPDATE controlplane_processrun r
   SET status = 'running', lease_owner = %(owner)s, lease_expires_at = now() + %(lease)s,
       started_at = COALESCE(r.started_at, now()), attempt_count = r.attempt_count + 1,
       updated_at = now(),
       messages = r.messages || %(msg)s::jsonb
  FROM controlplane_processdefinition d
 WHERE r.id = %(id)s AND d.id = r.definition_id
   AND (r.status = 'queued'
        OR (r.status = 'running' AND r.lease_expires_at < now()))
   AND r.attempt_count < r.max_attempts
RETURNING r.id, r.tenant_id, r.process_id, r.tier_order, r.inputs, r.request, r.trace_parent,
          r.feature_count, r.subscriber, d.spec, d.limits
"""
CLAIM_COLUMNS = (
    "id", "tenant_id", "process_id", "tier_order", "inputs", "request", "trace_parent",
    "feature_count", "subscriber", "spec", "limits",
)
_CLAIM_JSON = {"tier_order", "inputs", "request", "subscriber", "spec", "limits"}


def run_claim(*, run_id: uuid.UUID | str, owner: str) -> dict[str, Any] | None:
    """Take a queued run (or one whose lease expired) for ``owner``, in one statement that
    also returns what executing it needs. None: not claimable (taken, finished, cancelled)."""
    msg = orjson.dumps([_message(MessageType.INFO, "Executing...")]).decode()
    with connection.cursor() as cur:
        cur.execute(
            _CLAIM_SQL,
            # The lease is a timedelta (psycopg adapts it to an interval); django-stubs'
            # SQL parameter types omit timedelta: a stub gap.
            {"id": str(run_id), "owner": owner, "lease": _lease_delta(), "msg": msg},  # type: ignore[dict-item]
        )
        row = cur.fetchone()
    if row is None:
        return None
    return {
        c: orjson.loads(v) if c in _CLAIM_JSON and isinstance(v, str | bytes) else v
        for c, v in zip(CLAIM_COLUMNS, row, strict=True)
    }


_RENEW_SQL = """
UPDATE controlplane_processrun
   SET lease_expires_at = now() + %(lease)s
 WHERE id = ANY(%(ids)s::uuid[]) AND lease_owner = %(owner)s AND status IN ('running', 'cancelling')
RETURNING id, status
"""


def run_renew_leases(*, owner: str, run_ids: list[str]) -> dict[str, str]:
    """Extend the leases ``owner`` holds; returns id -> status for the leases still held."""
    if not run_ids:
        return {}
    with connection.cursor() as cur:
        cur.execute(
            _RENEW_SQL,
            # timedelta parameter: the same django-stubs gap as in run_claim.
            {"ids": run_ids, "owner": owner, "lease": _lease_delta()},  # type: ignore[dict-item]
        )
        return {str(r[0]): r[1] for r in cur.fetchall()}


_APPEND_SQL = """
UPDATE controlplane_processrun
   SET messages = messages || %(msgs)s::jsonb,
       progress = COALESCE(%(progress)s, progress),
       progress_message = COALESCE(%(pmsg)s, progress_message),
       updated_at = now()
 WHERE id = %(id)s AND status IN ('running', 'cancelling')
"""


def run_report(
    *,
    run_id: uuid.UUID | str,
    progress: int | None = None,
    progress_message: str | None = None,
    messages: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> None:
    """Persist progress and typed messages of a running run as they happen."""
    msgs = [_message(t, text) for t, text in messages]
    if progress is not None:
        progress = max(0, min(100, int(progress)))
    with connection.cursor() as cur:
        cur.execute(
            _APPEND_SQL,
            {
                "id": str(run_id),
                "msgs": orjson.dumps(msgs).decode(),
                "progress": progress,
                "pmsg": (progress_message or "")[:500] if progress_message is not None else None,
            },
        )


_TIER_SQL = """
UPDATE controlplane_processrun
   SET tiers_tried = tiers_tried || %(entry)s::jsonb,
       messages = messages || %(msgs)s::jsonb, updated_at = now()
 WHERE id = %(id)s
"""


def run_record_tier(*, run_id: uuid.UUID | str, tier: str, outcome: str, reason: str = "") -> None:
    """Record a tier attempt (``skipped``/``fallback``/``used``/``failed``) with its reason."""
    entry = {"tier": tier, "outcome": outcome, "reason": reason, "at": timezone.now().isoformat()}
    msgs = []
    if outcome in ("skipped", "fallback"):
        msgs.append(_message(MessageType.WARNING, f"Tier {tier} {outcome}: {reason}"))
    with connection.cursor() as cur:
        cur.execute(
            _TIER_SQL,
            {"id": str(run_id), "entry": orjson.dumps([entry]).decode(), "msgs": orjson.dumps(msgs).decode()},
        )


RESULT_COLUMNS = (
    "id", "process_id", "status", "mode", "surface", "progress", "progress_message", "messages",
    "created_at", "started_at", "finished_at", "updated_at", "output_links", "error", "request",
    "tier_used", "dismissed_at", "results_removed_at", "trace_parent",
)
_JSON_COLUMNS = {"messages", "output_links", "error", "request", "outputs", "tiers_tried"}
_FINISH_VALUES = {"tier_used", "outputs", "output_links", "progress", "cost_actual", "error"}


def run_from_row(columns: tuple[str, ...] | list[str], row: tuple[Any, ...]) -> ProcessRun:
    """An unsaved ProcessRun holding a RETURNING row (JSON columns decoded)."""
    data = {
        c: orjson.loads(v) if c in _JSON_COLUMNS and isinstance(v, str | bytes) else v
        for c, v in zip(columns, row, strict=True)
    }
    return ProcessRun(**data)


def _count_finished(
    *,
    process_id: str,
    status: str,
    tier: str = "",
    error: dict[str, Any] | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> None:
    """Count a run that reached a terminal status, once the change is committed (from what
    the ledger write returned: no query)."""
    transaction.on_commit(
        functools.partial(
            metrics.run_finished,
            process_id=process_id,
            tier=tier,
            status=status,
            error_code=error.get("code") if isinstance(error, dict) else None,
            started_at=started_at,
            finished_at=finished_at,
        )
    )


def _finish(
    run_id: uuid.UUID | str,
    owner: str,
    status: RunStatus,
    *,
    allowed: tuple[RunStatus, ...] = _LEASED,
    message: dict[str, str] | None = None,
    tier_entry: dict[str, str] | None = None,
    **values: Any,
) -> ProcessRun | None:
    """One conditional UPDATE ... RETURNING: the run ends only if it is still in an allowed
    state and (when ``owner`` is given) still leased by ``owner``. None: someone else ended it."""
    now = timezone.now()
    sets = [
        "status = %(status)s",
        "finished_at = GREATEST(%(now)s, started_at)",
        "started_at = COALESCE(started_at, %(now)s)",
        "updated_at = %(now)s",
        "lease_expires_at = NULL",
        "results_expire_at = %(expire)s",
        "messages = messages || %(msgs)s::jsonb",
        "tiers_tried = tiers_tried || %(tiers)s::jsonb",
    ]
    params: dict[str, Any] = {
        "status": status.value,
        "now": now,
        "expire": now + _results_ttl(),
        "msgs": orjson.dumps([message] if message else []).decode(),
        "tiers": orjson.dumps([tier_entry] if tier_entry else []).decode(),
        "id": str(run_id),
        "allowed": [s.value for s in allowed],
        "owner": owner,
    }
    for name, value in values.items():
        if name not in _FINISH_VALUES:
            raise ValueError(f"not a finishing column: {name}")
        if name in _JSON_COLUMNS:
            sets.append(f"{name} = %({name})s::jsonb")
            value = None if value is None else orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        else:
            sets.append(f"{name} = %({name})s")
        params[name] = value
    sql = (
        "UPDATE controlplane_processrun SET " + ", ".join(sets)
        + " WHERE id = %(id)s AND status = ANY(%(allowed)s)"
        + " AND (%(owner)s = '' OR lease_owner = %(owner)s)"
        + " RETURNING " + ", ".join(RESULT_COLUMNS)
    )
    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    if row is None:
        return None
    run = run_from_row(RESULT_COLUMNS, row)
    _count_finished(
        process_id=run.process_id, status=run.status, tier=run.tier_used, error=run.error,
        started_at=run.started_at, finished_at=run.finished_at,
    )
    return run


def run_complete(
    *,
    run_id: uuid.UUID | str,
    owner: str,
    tier: str,
    outputs: dict[str, Any],
    output_links: dict[str, Any] | None = None,
    cost_actual: float | None = None,
) -> ProcessRun | None:
    """Conditional completion: only the lease owner of a running run completes it, once.

    A run whose cancellation was requested while it finished still counts as succeeded:
    the work is done and its results are kept.
    """
    return _finish(
        run_id,
        owner,
        RunStatus.SUCCEEDED,
        message=_message(MessageType.INFO, "Succeeded."),
        tier_entry={"tier": tier, "outcome": "used", "reason": "", "at": timezone.now().isoformat()},
        tier_used=tier,
        outputs=outputs,
        output_links=output_links or {},
        progress=100,
        cost_actual=cost_actual,
    )


def run_fail(
    *,
    run_id: uuid.UUID | str,
    owner: str,
    error: dict[str, Any],
    status: RunStatus = RunStatus.FAILED,
    tier: str = "",
) -> ProcessRun | None:
    """Conditional failure (``failed`` or ``timed_out``) with a typed error document."""
    fields: dict[str, Any] = {"error": error}
    entry = None
    if tier:
        fields["tier_used"] = tier
        entry = {"tier": tier, "outcome": "failed", "reason": error.get("message", ""), "at": timezone.now().isoformat()}
    return _finish(
        run_id,
        owner,
        status,
        message=_message(MessageType.ERROR, error.get("message", "Failed.")),
        tier_entry=entry,
        **fields,
    )


def run_mark_cancelled(*, run_id: uuid.UUID | str, owner: str) -> ProcessRun | None:
    """The executor stopped on a cancellation request: cancelling/running -> cancelled."""
    return _finish(run_id, owner, RunStatus.CANCELLED, message=_message(MessageType.WARNING, "Cancelled."))


EXTERNAL_OWNER_PREFIX = "external:"

_DETACH_SQL = """
UPDATE controlplane_processrun
   SET lease_owner = %(external_owner)s, lease_expires_at = NULL, external = %(external)s::jsonb,
       mode = 'async', updated_at = now(), messages = messages || %(msgs)s::jsonb
 WHERE id = %(id)s AND status IN ('running', 'cancelling') AND lease_owner = %(owner)s
RETURNING status
"""


def external_owner(runner: str) -> str:
    """The lease owner of runs detached to ``runner`` ("aws" -> "external:aws-batch")."""
    return f"{EXTERNAL_OWNER_PREFIX}{runner}-batch"


def run_detach(*, run_id: uuid.UUID | str, owner: str, external: dict[str, Any]) -> RunStatus | None:
    """The run's work continues outside Honua (an AWS Batch job): it stays running, its lease
    passes from ``owner`` to the external owner with no expiry (the reaper leaves it alone:
    the job's end event or a DescribeJobs poll finishes it), the reference is kept in
    ``external`` and a sync run becomes a job. Returns the status, or None if ``owner`` no
    longer held the run."""
    job = external.get("job_id", "")
    msg = _message(MessageType.INFO, f"Running as {external.get('runner', 'external')} job {job}.")
    with connection.cursor() as cur:
        cur.execute(
            _DETACH_SQL,
            {
                "id": str(run_id),
                "owner": owner,
                "external_owner": external_owner(str(external.get("runner", "external"))),
                "external": orjson.dumps(external).decode(),
                "msgs": orjson.dumps([msg]).decode(),
            },
        )
        row = cur.fetchone()
    return RunStatus(row[0]) if row else None


def _external_cancel(run_id: uuid.UUID | str) -> None:
    from controlplane.services.batch_events import batch_job_terminate

    batch_job_terminate(run_id=run_id)


def _locked(run_id: uuid.UUID | str, tenant_id: int) -> ProcessRun:
    run = (
        ProcessRun.objects.select_for_update()
        .defer("inputs", "outputs")
        .filter(id=run_id, tenant_id=tenant_id)
        .first()
    )
    if run is None:
        raise NoSuchJob(f"no job {run_id}")
    return run


@transaction.atomic
def run_cancel(*, run_id: uuid.UUID | str, tenant_id: int, actor: str) -> RunStatus:
    """Request cancellation: a queued run is cancelled now, a running one is told to stop."""
    run = _locked(run_id, tenant_id)
    before = run.status
    now = timezone.now()
    if run.status in (RunStatus.QUEUED, RunStatus.WAITING):
        ProcessRun.objects.filter(id=run.id).update(
            status=RunStatus.CANCELLED.value,
            cancel_requested_at=now,
            finished_at=now,
            updated_at=now,
            messages=[*run.messages, _message(MessageType.WARNING, f"Cancelled by {actor}.")],
        )
        after = RunStatus.CANCELLED
        _count_finished(process_id=run.process_id, status=after.value)
    elif run.status == RunStatus.RUNNING:
        ProcessRun.objects.filter(id=run.id).update(
            status=RunStatus.CANCELLING.value,
            cancel_requested_at=now,
            updated_at=now,
            messages=[*run.messages, _message(MessageType.WARNING, f"Cancellation requested by {actor}.")],
        )
        after = RunStatus.CANCELLING
        if run.lease_owner.startswith(EXTERNAL_OWNER_PREFIX):
            # No worker holds a detached run: stop its job (TerminateJob, through the
            # executor) once this is committed; the job's end event or a poll then finishes
            # the run as cancelled (or succeeded, if the job had already finished).
            transaction.on_commit(functools.partial(_external_cancel, run.id))
    elif run.status == RunStatus.CANCELLING:
        if run.lease_owner.startswith(EXTERNAL_OWNER_PREFIX):
            transaction.on_commit(functools.partial(_external_cancel, run.id))
        return RunStatus.CANCELLING
    else:
        raise InvalidRunTransition(f"job {run.id} has already finished ({run.status})")
    audit_record(
        action="run.cancel",
        object_type="run",
        object_id=str(run.id),
        actor=actor,
        tenant_id=tenant_id,
        before={"status": before},
        after={"status": after.value},
    )
    return after


@transaction.atomic
def run_dismiss(*, run_id: uuid.UUID | str, tenant_id: int, actor: str) -> None:
    """Dismiss a job: stop it if active, remove its results and artifacts, keep the ledger row."""
    run = _locked(run_id, tenant_id)
    if run.dismissed_at is not None:
        return
    before = run.status
    if run.status in {s.value for s in ACTIVE_STATUSES}:
        run_cancel(run_id=run.id, tenant_id=tenant_id, actor=actor)
    now = timezone.now()
    ProcessRun.objects.filter(id=run.id).update(
        dismissed_at=now, results_removed_at=now, updated_at=now, output_links={}, results_expire_at=None
    )
    if run.status == RunStatus.SUCCEEDED:
        ProcessRun.objects.filter(id=run.id).update(outputs=None)
    artifacts_delete(Artifact.objects.filter(run_id=run.id))
    audit_record(
        action="run.dismiss",
        object_type="run",
        object_id=str(run.id),
        actor=actor,
        tenant_id=tenant_id,
        before={"status": before},
        after={"dismissed": True},
    )


def artifacts_delete(queryset: Any) -> int:
    """Delete artifacts' stored bytes after commit, and their rows now."""
    from controlplane.services.artifacts import artifact_store_delete

    items = list(queryset.values_list("store", "key"))
    queryset.delete()

    def delete_stored() -> None:
        for store, key in items:
            artifact_store_delete(store=store, key=key)

    transaction.on_commit(delete_stored)
    return len(items)


def run_record_callback(*, run_id: uuid.UUID | str, delivery: dict[str, Any]) -> None:
    """Keep a subscriber delivery attempt on the run."""
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE controlplane_processrun SET callbacks = callbacks || %s::jsonb WHERE id = %s",
            [orjson.dumps([delivery]).decode(), str(run_id)],
        )


def runs_reap_expired(*, limit: int = 100) -> dict[str, int]:
    """Runs whose worker vanished (lease expired) go back to the queue with their attempt
    count raised; out of attempts they fail; a cancelling one is cancelled."""
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    with transaction.atomic():
        expired = list(
            ProcessRun.objects.select_for_update(skip_locked=True)
            .filter(status__in=[s.value for s in _LEASED], lease_expires_at__lt=timezone.now())
            .only(
                "id", "status", "attempt_count", "max_attempts", "messages", "tenant_id", "lease_owner",
                "process_id", "tier_used", "started_at",
            )[:limit]
        )
        now = timezone.now()
        requeue: list[uuid.UUID] = []
        for run in expired:
            base = ProcessRun.objects.filter(id=run.id)
            lost = f"The worker {run.lease_owner} stopped renewing its lease (attempt {run.attempt_count})."
            if run.status == RunStatus.CANCELLING:
                base.update(
                    status=RunStatus.CANCELLED.value, finished_at=now, updated_at=now,
                    lease_expires_at=None,
                    messages=[*run.messages, _message(MessageType.WARNING, lost + " Cancelled.")],
                )
                counts["cancelled"] += 1
                outcome = "cancelled"
                _count_finished(
                    process_id=run.process_id, status=outcome, tier=run.tier_used,
                    started_at=run.started_at, finished_at=now,
                )
            elif run.attempt_count >= run.max_attempts:
                error = {"code": "worker-lost", "message": lost + " No attempts left.", "details": []}
                base.update(
                    status=RunStatus.FAILED.value, finished_at=now, updated_at=now,
                    lease_expires_at=None, error=error,
                    messages=[*run.messages, _message(MessageType.ERROR, lost + " No attempts left.")],
                )
                counts["failed"] += 1
                outcome = "failed"
                _count_finished(
                    process_id=run.process_id, status=outcome, tier=run.tier_used, error=error,
                    started_at=run.started_at, finished_at=now,
                )
            else:
                base.update(
                    status=RunStatus.QUEUED.value, lease_owner="", lease_expires_at=None, updated_at=now,
                    messages=[*run.messages, _message(MessageType.WARNING, lost + " Requeued.")],
                )
                requeue.append(run.id)
                counts["requeued"] += 1
                outcome = "requeued"
            audit_record(
                action="run.lease_expired", object_type="run", object_id=str(run.id),
                actor="reaper", tenant_id=run.tenant_id, before={"status": run.status},
                after={"outcome": outcome},
            )
        for rid in requeue:
            _enqueue_with(rid)
    if any(counts.values()):
        log.warning("reaped expired leases", extra=counts)
    return counts


def runs_expire_results(*, limit: int = 500) -> int:
    """Remove outputs and artifacts of runs past their results TTL (the ledger row stays)."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            ProcessRun.objects.select_for_update(skip_locked=True)
            .filter(results_expire_at__lt=now)
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return 0
        ProcessRun.objects.filter(id__in=ids).update(
            results_expire_at=None, output_links={}, results_removed_at=now, updated_at=now
        )
        ProcessRun.objects.filter(id__in=ids, status=RunStatus.SUCCEEDED.value).update(outputs=None)
        artifacts_delete(Artifact.objects.filter(run_id__in=ids))
    return len(ids)


def run_mode_switch(*, run_id: uuid.UUID | str) -> None:
    """A sync run overran its inline deadline and continues as a job."""
    ProcessRun.objects.filter(id=run_id, mode=ExecutionMode.SYNC.value).filter(
        ~Q(status__in=_TERMINAL)
    ).update(mode=ExecutionMode.ASYNC.value, updated_at=timezone.now())
