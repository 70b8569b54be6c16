"""Submission and execution: admission -> scheduling -> auditing -> tier coordination.

``run_submit`` is the single entry point of both API surfaces. Sync runs execute inline
(on a small pool of persistent threads, so their database connections are reused) with a
deadline; past the deadline the run continues as a job and the client gets its reference.
Async runs are queued and picked up by django-q2 workers through ``run_execute``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from controlplane.contracts import (
    ExecutionMode,
    ExecutionRequest,
    ExecutionResult,
    MessageType,
    RunStatus,
    Tier,
)
from controlplane.exceptions import (
    DataNotInDatabase,
    HonuaError,
    InputLimitExceeded,
    ModeNotSupported,
    NoTierAvailable,
    PayloadTooLarge,
    QuotaExceeded,
)
from controlplane.models import ProcessRun
from controlplane.services import runs as run_services
from controlplane.services.access import process_access_check
from controlplane.services.artifacts import artifact_create, output_encode
from controlplane.services.layerrefs import (
    layer_inputs_load,
    layer_inputs_resolve,
    layer_outputs_publish,
    layer_sources,
    register_as_check,
)
from controlplane.services.leases import keeper, worker_identity
from controlplane.services.policy import ResolvedProcess, process_resolve, tenant_policy_get
from controlplane.services.quotas import (
    QuotaPlan,
    quota_budget_switch,
    quota_guard,
    quota_plan,
    quota_refusal_record,
)
from controlplane.services.references import reference_inputs_resolve
from controlplane.services.uploads import file_inputs_load, upload_inputs_resolve
from controlplane.services.validation import InputStats, inputs_validate
from executors.base import (
    Cancelled,
    CapacityRejected,
    DeadlineExceeded,
    Detached,
    ExecutionContext,
    ExecutorError,
    InvalidInput,
    TierUnavailable,
)
from executors.registry import get_executor
from honua.logging import log_context
from honua.tracecontext import TraceContext

log = logging.getLogger("honua.execution")

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_busy = 0


def _inline_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=int(settings.HONUA.get("INLINE_THREADS", 8)), thread_name_prefix="honua-inline"
            )
        return _pool


@dataclass
class RunPlan:
    """Everything needed to execute a claimed run, without HTTP or tenant knowledge."""

    run_id: str
    tenant_id: int
    process_id: str
    tier_order: list[str]
    handlers: dict[str, str]
    inputs: dict[str, Any]
    limits: dict[str, Any]
    output_types: dict[str, str]
    output_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    out_srid: int | None = None
    process_srid: int | None = None
    trace_parent: str | None = None
    feature_count: int = 0
    subscriber: dict[str, str] | None = None


# --- admission and scheduling -------------------------------------------------------------


def admission_check(*, resolved: ResolvedProcess, stats: InputStats, request_bytes: int) -> None:
    """Per-process input limits (bytes, features, vertices: the definition's, tightened by
    the tenant's policy) and the tenant's cost cap of one run of the process."""
    limits = resolved.limits
    pid = resolved.spec.id
    if resolved.cost_cap is not None:
        cost = estimate_cost(resolved=resolved, stats=stats)
        if cost > resolved.cost_cap:
            raise InputLimitExceeded(
                f"the estimated cost of this run, {cost:g} units, exceeds the cap of "
                f"{resolved.cost_cap:g} for process {pid!r}"
            )
    max_bytes = limits.get("max_bytes")
    if max_bytes and request_bytes > max_bytes:
        raise PayloadTooLarge(f"the request is {request_bytes} bytes; {pid!r} accepts at most {max_bytes}")
    max_features = limits.get("max_features")
    if max_features and stats.features > max_features:
        raise InputLimitExceeded(
            f"{stats.features} features exceed the limit of {max_features} for process {pid!r}"
        )
    max_vertices = limits.get("max_vertices")
    if max_vertices and stats.vertices > max_vertices:
        raise InputLimitExceeded(
            f"{stats.vertices} vertices exceed the limit of {max_vertices} for process {pid!r}"
        )


def schedule_mode(*, resolved: ResolvedProcess, requested: ExecutionMode | None) -> ExecutionMode:
    """Client request, else tenant preference, else the catalog default; within what the
    process supports (OGC: no preference and both supported -> the default)."""
    modes = resolved.spec.modes
    if requested is not None:
        if requested in modes:
            return requested
        if len(modes) == 1:
            return modes[0]
        raise ModeNotSupported(f"process {resolved.spec.id!r} does not run {requested.value}")
    if resolved.preferred_mode is not None and resolved.preferred_mode in modes:
        return resolved.preferred_mode
    return resolved.spec.default_mode


def _locality(
    *, resolved: ResolvedProcess, inputs: dict[str, Any], inline_policy: str
) -> tuple[str | None, bool]:
    """Why a tier working inside the database cannot serve these inputs (None: it can), and
    whether the reason is a layer (its data lives elsewhere) rather than inline data."""
    types = {p.name: p.type.value for p in resolved.spec.inputs}
    sources = layer_sources(inputs, types)
    for name, items in sources.items():
        for source in items:
            if source is not None and source.storage != "postgis":
                return (
                    f"input {name!r} is layer {source.layer!r}, {source.label}, not in this database",
                    True,
                )
    inline = [name for name, items in sources.items() if any(s is None for s in items)]
    if inline or not sources:
        ships = inline_policy == "always" or (inline_policy == "pinned" and resolved.tiers_pinned)
        if not ships:
            what = f"input {inline[0]!r} is" if inline else "the inputs are"
            return f"{what} inline, not in this database (data locality)", False
    return None, False


def schedule_tiers(
    *, resolved: ResolvedProcess, inputs: dict[str, Any] | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """The tier order for this request, minus tiers that cannot serve it, with reasons.

    Data locality: a tier that works inside the database (``needs_database``) serves a run
    when all its feature data is in this database: references to layers stored in PostGIS.
    A file layer is never shipped there. Inputs given inline are not in the database either:
    such a tier is left out unless the tenant's policy pins the order (an operator's explicit
    choice to ship the inline data to the database, as a WKB array parameter), or
    HONUA_POSTGIS_INLINE=always. The order itself is kept: a PostGIS layer does not move the
    postgis tier ahead of the definition's order.
    """
    inline_policy = settings.HONUA.get("POSTGIS_INLINE", "pinned")
    keep: list[str] = []
    skipped: list[dict[str, str]] = []
    now = timezone.now().isoformat()
    by_layer = False
    for tier in resolved.tier_order:
        executor = get_executor(tier.value)
        if executor is not None and executor.needs_database:
            reason, by_layer = _locality(resolved=resolved, inputs=inputs or {}, inline_policy=inline_policy)
            if reason is not None:
                skipped.append({"tier": tier.value, "outcome": "skipped", "reason": reason, "at": now})
                continue
        keep.append(tier.value)
    if not keep:
        message = f"no execution tier can run {resolved.spec.id!r} for this request: " + "; ".join(
            f"{s['tier']}: {s['reason']}" for s in skipped
        )
        hints = resolved.definition.spec.get("hints", {})
        if by_layer or hints.get("requires_postgres"):
            raise DataNotInDatabase(message)
        raise NoTierAvailable(message)
    return keep, skipped


def _expected_ms(*, resolved: ResolvedProcess, stats: InputStats) -> float:
    """The catalog's expected run time for this input size (target p95 per 1,000 features);
    with no hint, assume it may take as long as the deadline."""
    hints = resolved.definition.spec.get("hints", {})
    target = hints.get("target_p95_ms")
    if target is None:
        return float("inf")
    return float(target) * max(1.0, stats.features / 1000.0)


def estimate_cost(*, resolved: ResolvedProcess, stats: InputStats) -> float:
    per_thousand = float(resolved.definition.spec.get("hints", {}).get("estimated_cost_units", 1.0))
    return round(max(1.0, stats.features / 1000.0) * per_thousand, 3)


# --- submission -----------------------------------------------------------------------------


def run_submit(request: ExecutionRequest) -> ExecutionResult:
    """Admit, schedule, record and start (inline or queued) one run."""
    # Every run belongs to a trace: the client's (W3C traceparent) or one started here.
    trace = TraceContext.parse(request.trace_parent) or TraceContext.new()
    with log_context(trace=trace):
        return _submit(request, trace)


def _submit(request: ExecutionRequest, trace: TraceContext) -> ExecutionResult:
    policy = tenant_policy_get(request.principal.tenant)
    resolved = process_resolve(principal=request.principal, process_id=request.process_id, policy=policy)
    process_access_check(principal=request.principal, process_id=resolved.spec.id)
    tenant = policy.tenant
    given = upload_inputs_resolve(
        principal=request.principal, spec=resolved.spec, inputs=request.inputs, limits=resolved.limits
    )
    given = reference_inputs_resolve(
        spec=resolved.spec, inputs=given, limits=resolved.limits, srid=request.process_srid or request.out_srid,
        tenant=request.principal.tenant,
    )
    given = layer_inputs_resolve(principal=request.principal, spec=resolved.spec, inputs=given, limits=resolved.limits)
    inputs, stats = inputs_validate(resolved.spec, given)
    admission_check(resolved=resolved, stats=stats, request_bytes=request.request_bytes)
    mode = schedule_mode(resolved=resolved, requested=request.mode)
    unknown_outputs = set(request.outputs) - {o.name for o in resolved.spec.outputs}
    if unknown_outputs:
        from controlplane.exceptions import InvalidParameterValue

        raise InvalidParameterValue(
            f"unknown output {sorted(unknown_outputs)[0]!r}; outputs are: "
            + ", ".join(o.name for o in resolved.spec.outputs)
        )
    register_as_check(principal=request.principal, spec=resolved.spec, outputs=request.outputs)
    defn = resolved.definition
    tier_order, tiers_skipped = schedule_tiers(resolved=resolved, inputs=inputs)
    cost = estimate_cost(resolved=resolved, stats=stats)
    quota = quota_plan(
        tenant_id=tenant.pk,
        tenant=tenant.slug,
        principal=request.principal.username,
        process_id=defn.process_id,
        resource_class=resolved.resource_class.value,
        cost=cost,
        policy_version=resolved.policy_version,
        quotas=policy.quotas,
    )
    output_requests = {k: vars(v) for k, v in request.outputs.items()}
    subscriber = request.subscriber.to_json() if request.subscriber else None
    stored_request = {
        "response": request.response,
        "outputs": output_requests,
        "out_srid": request.out_srid,
        "process_srid": request.process_srid,
        "options": request.options,
        "requested_mode": request.mode.value if request.mode else None,
    }
    fields = {
        "tenant_id": tenant.pk,
        "user_id": request.principal.user_id,
        "principal": request.principal.username,
        "surface": request.surface.value,
        "process_id": defn.process_id,
        "process_version": defn.version,
        "definition_id": defn.pk,
        "definition_revision": defn.revision,
        "policy_version": resolved.policy_version,
        "mode": mode.value,
        "resource_class": resolved.resource_class.value,
        "tier_order": tier_order,
        "tiers_tried": tiers_skipped,
        "inputs": inputs,
        "input_hash": request.input_hash(),
        "input_bytes": request.request_bytes,
        "feature_count": stats.features,
        "vertex_count": stats.vertices,
        "request": stored_request,
        "subscriber": subscriber,
        "trace_parent": trace.header,
        "cost_estimated": cost,
    }
    plan = RunPlan(
        run_id="",
        tenant_id=tenant.pk,
        process_id=defn.process_id,
        tier_order=tier_order,
        handlers=resolved.handlers,
        inputs=inputs,
        limits=resolved.limits,
        output_types={o.name: o.type.value for o in resolved.spec.outputs},
        output_requests=output_requests,
        out_srid=request.out_srid,
        process_srid=request.process_srid,
        trace_parent=trace.header,
        feature_count=stats.features,
        subscriber=subscriber,
    )
    owner = worker_identity()
    run = _record(quota=quota, fields=fields, mode=mode, modes=resolved.spec.modes, owner=owner)
    if run.mode == ExecutionMode.ASYNC.value:
        return _result_from_run(run)
    plan.run_id = str(run.id)
    if _expected_ms(resolved=resolved, stats=stats) * 4 < settings.HONUA["SYNC_DEADLINE_SECONDS"] * 1000:
        # Far inside the deadline by the catalog's own estimate: run on this thread and
        # spare the hand-off to the pool.
        outputs, finished = execute_plan(plan, owner)
    else:
        future = _inline_pool().submit(_execute_inline, plan, owner)
        try:
            outputs, finished = future.result(timeout=settings.HONUA["SYNC_DEADLINE_SECONDS"])
        except FutureTimeout:
            run_services.run_mode_switch(run_id=run.id)
            return run_result_load(run_id=run.id)
    if finished is None:  # ended elsewhere (cancelled, lease lost): read what the ledger says
        return run_result_load(run_id=run.id)
    return _result_from_run(finished, outputs if finished.status == RunStatus.SUCCEEDED else None)


def _record(
    *,
    quota: QuotaPlan,
    fields: dict[str, Any],
    mode: ExecutionMode,
    modes: tuple[ExecutionMode, ...],
    owner: str,
) -> ProcessRun:
    """Admit and record the run: one INSERT guarded by the quotas (a sync run in autocommit;
    an async one in the transaction that also queues it). An exhausted budget whose policy
    is async_only queues a sync run instead of refusing it; every refusal is audited."""
    waived = False
    notes: tuple[str, ...] = ()
    while True:
        fields["mode"] = mode.value
        try:
            with transaction.atomic() if mode is ExecutionMode.ASYNC else contextlib.nullcontext():
                return run_services.run_create(
                    fields=fields,
                    claim_owner=owner if mode is ExecutionMode.SYNC else None,
                    notes=notes,
                    guard=quota_guard(plan=quota, waive_budget=waived),
                )
        except QuotaExceeded as refused:
            note = quota_budget_switch(plan=quota, refusal=refused, modes=modes, waived=waived)
            if note is None:
                quota_refusal_record(plan=quota, refusal=refused, mode=mode)
                raise
            mode, waived, notes = ExecutionMode.ASYNC, True, (note,)


def _execute_inline(plan: RunPlan, owner: str) -> tuple[dict[str, Any] | None, ProcessRun | None]:
    try:
        return execute_plan(plan, owner)
    finally:
        close_old_connections()


# --- execution ------------------------------------------------------------------------------


def plan_from_claim(row: dict[str, Any]) -> RunPlan:
    """The plan of a claimed run (worker path), from the claim's own RETURNING row."""
    spec = row["spec"]
    req = row["request"] or {}
    return RunPlan(
        run_id=str(row["id"]),
        tenant_id=row["tenant_id"],
        process_id=row["process_id"],
        tier_order=list(row["tier_order"]),
        handlers=dict(spec.get("handlers", {})),
        inputs=row["inputs"],
        limits=dict(row["limits"] or {}),
        output_types={o["name"]: o["type"] for o in spec.get("outputs", [])},
        output_requests=req.get("outputs", {}),
        out_srid=req.get("out_srid"),
        process_srid=req.get("process_srid"),
        trace_parent=row["trace_parent"] or None,
        feature_count=row["feature_count"],
        subscriber=row["subscriber"],
    )


def run_execute(run_id: str) -> str:
    """Worker entry point: claim the run, execute it, complete it. Returns the outcome."""
    owner = worker_identity()
    claimed = run_services.run_claim(run_id=run_id, owner=owner)
    if claimed is None:
        return "not-claimed"
    plan = plan_from_claim(claimed)
    _notify(plan, "in_progress")
    execute_plan(plan, owner)
    return "done"


def _notify(plan: RunPlan, event: str) -> None:
    """Queue a subscriber callback when the client asked for this event."""
    from controlplane.services.notifications import EVENT_URI

    if plan.subscriber and plan.subscriber.get(EVENT_URI[event]):
        from django_q.tasks import async_task

        run_id = plan.run_id
        transaction.on_commit(lambda: async_task("controlplane.tasks.run_notify", run_id, event))


def _error_doc(code: str, message: str, details: list[str] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or []}


def _failed(
    plan: RunPlan, owner: str, tier: str, error: dict[str, Any], status: RunStatus = RunStatus.FAILED
) -> ProcessRun | None:
    failed = run_services.run_fail(run_id=plan.run_id, owner=owner, tier=tier, error=error, status=status)
    if failed:
        _notify(plan, "failed")
    return failed


def _end_with_error(plan: RunPlan, owner: str, tier: str, exc: ExecutorError) -> ProcessRun | None:
    """End the run as an executor's typed error says (inline, worker, or a detached job's end):
    cancelled, timed out, or failed with the error's code."""
    if isinstance(exc, Cancelled):
        cancelled = run_services.run_mark_cancelled(run_id=plan.run_id, owner=owner)
        if cancelled:
            _notify(plan, "failed")
        return cancelled
    if isinstance(exc, DeadlineExceeded):
        return _failed(plan, owner, tier, _error_doc("timed-out", exc.message), RunStatus.TIMED_OUT)
    if isinstance(exc, InvalidInput):
        return _failed(plan, owner, tier, _error_doc("invalid-parameter-value", exc.message))
    return _failed(plan, owner, tier, _error_doc(exc.code, exc.message))


def _store_outputs(plan: RunPlan, outputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inline small outputs in the ledger; spill large or by-reference ones to artifacts."""
    spill = int(settings.HONUA.get("OUTPUT_SPILL_BYTES", 256 * 1024))
    inline: dict[str, Any] = {}
    links: dict[str, Any] = {}
    for name, value in outputs.items():
        wanted = (plan.output_requests.get(name) or {}).get("transmission", "value")
        data, media, fmt = output_encode(value, plan.output_types.get(name, "object"))
        if wanted == "reference" or len(data) > spill:
            art = artifact_create(
                tenant_id=plan.tenant_id, run_id=plan.run_id, name=name, data=data, media_type=media
            )
            links[name] = {
                "artifact": str(art.id),
                "media_type": media,
                "size": art.size,
                "transmission": wanted,
                "format": fmt,
            }
        else:
            inline[name] = value
    return inline, links


def execute_plan(plan: RunPlan, owner: str) -> tuple[dict[str, Any] | None, ProcessRun | None]:
    """Try the tiers in order; complete, fail or cancel the run. Returns the outputs (on
    success) and the finished run as recorded, or None when another owner ended it.

    The execution is a span of the run's trace: its log lines carry the trace and span ids,
    and executors get it as their context's ``trace_parent`` to hand on (batch tasks).
    """
    parent = TraceContext.parse(plan.trace_parent) or TraceContext.new()
    span = parent.child()
    started = time.monotonic()
    with log_context(run_id=plan.run_id, trace=span):
        outputs, finished = _execute_tiers(plan, owner, span)
        log.info(
            "run finished" if finished else "run ended elsewhere",
            extra={
                "process_id": plan.process_id,
                "status": finished.status if finished else "",
                "tier": (finished.tier_used if finished else "") or "",
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
                "parent_span_id": parent.span_id,
            },
        )
    return outputs, finished


def _execute_tiers(
    plan: RunPlan, owner: str, span: TraceContext
) -> tuple[dict[str, Any] | None, ProcessRun | None]:
    run_id = plan.run_id
    cancel_event = threading.Event()
    keeper.register(run_id, cancel_event)
    reasons: list[str] = []
    started = time.monotonic()
    max_runtime = plan.limits.get("max_runtime_seconds")

    def progress(percent: int, message: str | None = None) -> None:
        run_services.run_report(run_id=run_id, progress=percent, progress_message=message)

    def message(level: str, text: str) -> None:
        run_services.run_report(run_id=run_id, messages=[(level, text)])

    def attach(name: str, data: bytes, media_type: str) -> None:
        artifact_create(tenant_id=plan.tenant_id, run_id=run_id, name=name, data=data, media_type=media_type)

    try:
        for tier in plan.tier_order:
            executor = get_executor(tier)
            handler = plan.handlers.get(tier)
            if executor is None or not executor.is_available():
                reason = f"the {tier} tier is not available on this server"
            elif handler is None or not executor.supports(handler):
                reason = f"the {tier} tier has no implementation of {handler or plan.process_id!r}"
            else:
                ctx = ExecutionContext(
                    run_id=run_id,
                    process_id=plan.process_id,
                    handler=handler,
                    limits=plan.limits,
                    out_srid=plan.out_srid,
                    process_srid=plan.process_srid,
                    progress=progress,
                    message=message,
                    cancel_event=cancel_event,
                    deadline=(started + float(max_runtime)) if max_runtime else None,
                    trace_parent=span.header,
                    attach=attach,
                )
                keeper_cancel = getattr(executor, "cancel_callback", None)
                if keeper_cancel is not None:
                    keeper.on_cancel(run_id, functools.partial(keeper_cancel, ctx))
                try:
                    inputs = file_inputs_load(
                        tenant_id=plan.tenant_id, process_id=plan.process_id, inputs=plan.inputs
                    )
                    inputs = layer_inputs_load(inputs=inputs, in_database=executor.needs_database)
                    outputs = executor.execute(handler, inputs, ctx)
                except (TierUnavailable, CapacityRejected) as exc:
                    reason = exc.message
                    run_services.run_record_tier(run_id=run_id, tier=tier, outcome="fallback", reason=reason)
                    reasons.append(f"{tier}: {reason}")
                    continue
                except Detached as exc:
                    _detach(plan, owner, tier, handler, exc)
                    return None, None
                except ExecutorError as exc:
                    return None, _end_with_error(plan, owner, tier, exc)
                except Exception as exc:  # the executor boundary: never lose a run
                    log.exception("executor crashed", extra={"tier": tier, "process_id": plan.process_id})
                    return None, _failed(
                        plan, owner, tier, _error_doc("execution-failed", f"{type(exc).__name__}: {exc}")
                    )
                inline, links = _store_outputs(plan, outputs)
                cost = round(max(1.0, plan.feature_count / 1000.0) * (time.monotonic() - started + 0.001), 4)
                try:
                    done = _complete(plan, owner, tier, outputs, inline, links, cost)
                except Exception as exc:  # a promised layer not published fails the run
                    log.exception("publishing a result layer failed", extra={"process_id": plan.process_id})
                    text = exc.message if isinstance(exc, HonuaError | ExecutorError) else f"{type(exc).__name__}: {exc}"
                    return None, _failed(
                        plan, owner, tier,
                        _error_doc("layer-publish-failed", f"the result could not be published as a layer: {text}"),
                    )
                if done:
                    _notify(plan, "success")
                return (outputs if done else None), done
            run_services.run_record_tier(run_id=run_id, tier=tier, outcome="skipped", reason=reason)
            reasons.append(f"{tier}: {reason}")
        error = NoTierAvailable("no execution tier could run this process: " + "; ".join(reasons))
        return None, _failed(plan, owner, "", _error_doc(error.code, error.message))
    finally:
        keeper.unregister(run_id)


# --- detached runs (AWS Batch): handed off, finished from the job's end ------------------------


def _detach(plan: RunPlan, owner: str, tier: str, handler: str, exc: Detached) -> None:
    """The executor handed the work to an external job: record it (the run stays running)."""
    external = {**exc.external, "tier": tier, "handler": handler}
    status = run_services.run_detach(run_id=plan.run_id, owner=owner, external=external)
    if status == RunStatus.CANCELLING:  # cancelled while it was being submitted
        from controlplane.services.batch_events import batch_job_terminate

        batch_job_terminate(run_id=plan.run_id)


def _plan_of(run: ProcessRun) -> RunPlan:
    spec = run.definition.spec
    req = run.request or {}
    return RunPlan(
        run_id=str(run.id),
        tenant_id=run.tenant_id,
        process_id=run.process_id,
        tier_order=list(run.tier_order),
        handlers=dict(spec.get("handlers", {})),
        inputs={},
        limits=dict(run.definition.limits or {}),
        output_types={o["name"]: o["type"] for o in spec.get("outputs", [])},
        output_requests=req.get("outputs", {}),
        trace_parent=run.trace_parent or None,
        feature_count=run.feature_count,
        subscriber=run.subscriber,
    )


def run_resume(*, run_id: uuid.UUID | str, job: dict[str, Any]) -> str:
    """Finish a detached run from its external job's final description (an AWS Batch "Job
    State Change" event's detail, or DescribeJobs). Idempotent: a run already finished, held
    by another consumer, or not detached to this job is left alone ("ignored"). Returns the
    outcome: succeeded, failed, timed_out, cancelled or ignored."""
    with transaction.atomic():
        run = (
            ProcessRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("definition")
            .defer("inputs", "outputs")
            .filter(
                id=run_id,
                status__in=[RunStatus.RUNNING.value, RunStatus.CANCELLING.value],
                lease_owner__startswith=run_services.EXTERNAL_OWNER_PREFIX,
            )
            .first()
        )
        external = (run.external or {}) if run is not None else {}
        if run is None or not external.get("job_id") or external.get("job_id") != job.get("jobId"):
            return "ignored"
        plan = _plan_of(run)
        owner = run.lease_owner
        tier = str(external.get("tier") or "batch")
        cancelling = run.status == RunStatus.CANCELLING
        with log_context(run_id=plan.run_id, trace=TraceContext.parse(plan.trace_parent) or TraceContext.new()):
            finished = _resume(plan, owner, tier, external, job, cancelling, run.started_at)
        return finished.status if finished is not None else "ignored"


def _resume(
    plan: RunPlan, owner: str, tier: str, external: dict[str, Any], job: dict[str, Any], cancelling: bool,
    started_at: Any,
) -> ProcessRun | None:
    run_id = plan.run_id

    def message(level: str, text: str) -> None:
        run_services.run_report(run_id=run_id, messages=[(level, text)])

    def attach(name: str, data: bytes, media_type: str) -> None:
        artifact_create(tenant_id=plan.tenant_id, run_id=run_id, name=name, data=data, media_type=media_type)

    executor = get_executor(tier)
    resume = getattr(executor, "resume", None)
    if resume is None:
        error = _error_doc("execution-failed", f"the {tier} tier cannot finish external job {external.get('job_id')}")
        return _failed(plan, owner, tier, error)
    ctx = ExecutionContext(
        run_id=run_id,
        process_id=plan.process_id,
        handler=str(external.get("handler") or ""),
        limits=plan.limits,
        message=message,
        is_cancelled=lambda: cancelling,
        attach=attach,
    )
    try:
        outputs = resume(external, job, ctx)
    except ExecutorError as exc:
        return _end_with_error(plan, owner, tier, exc)
    inline, links = _store_outputs(plan, outputs)
    seconds = (timezone.now() - started_at).total_seconds() if started_at else 0.0
    cost = round(max(1.0, plan.feature_count / 1000.0) * (seconds + 0.001), 4)
    done = _complete(plan, owner, tier, outputs, inline, links, cost)
    if done:
        _notify(plan, "success")
        cleanup = getattr(executor, "remote_cleanup", None)
        if cleanup is not None:
            transaction.on_commit(functools.partial(_remote_cleanup, cleanup, external, run_id))
    return done


def _remote_cleanup(cleanup: Any, external: dict[str, Any], run_id: str) -> None:
    """After the completion is committed (a rolled-back one is retried from the same files)."""
    try:
        cleanup(external, run_id)
    except Exception:  # best effort: the buckets' lifecycle rule removes what is left
        log.warning("staged files of a finished job not removed", extra={"run_id": run_id}, exc_info=True)


def _complete(
    plan: RunPlan,
    owner: str,
    tier: str,
    outputs: dict[str, Any],
    inline: dict[str, Any],
    links: dict[str, Any],
    cost: float,
) -> ProcessRun | None:
    """Complete the run; outputs asked ``register_as`` are published as layers in the same
    transaction, so a run succeeds with its layers or not at all."""
    if not any((r or {}).get("register_as") for r in plan.output_requests.values()):
        return run_services.run_complete(
            run_id=plan.run_id, owner=owner, tier=tier, outputs=inline, output_links=links, cost_actual=cost
        )
    with transaction.atomic():
        published = layer_outputs_publish(
            tenant_id=plan.tenant_id, run_id=plan.run_id, outputs=outputs, output_requests=plan.output_requests,
        )
        run_services.run_report(
            run_id=plan.run_id,
            messages=[
                ("info", f"Output {name!r} published as layer {cid!r} ({count} features).")
                for name, cid, count in published
            ],
        )
        done = run_services.run_complete(
            run_id=plan.run_id, owner=owner, tier=tier, outputs=inline, output_links=links, cost_actual=cost
        )
        if done is None:  # ended elsewhere: no layer without its run
            transaction.set_rollback(True)
    return done


# --- reading results ------------------------------------------------------------------------


def _result_from_run(run: ProcessRun, live_outputs: dict[str, Any] | None = None) -> ExecutionResult:
    from controlplane.contracts import RunMessage, Surface

    def iso(v: Any) -> str | None:
        return v.isoformat() if v else None

    deferred = run.get_deferred_fields()

    def get(name: str, default: Any = None) -> Any:
        return default if name in deferred else getattr(run, name)

    outputs = get("outputs") if live_outputs is None else live_outputs
    return ExecutionResult(
        run_id=run.id if isinstance(run.id, uuid.UUID) else uuid.UUID(str(run.id)),
        process_id=run.process_id,
        status=RunStatus(run.status),
        mode=ExecutionMode(run.mode),
        surface=Surface(run.surface),
        progress=run.progress,
        messages=tuple(
            RunMessage(type=MessageType(m.get("type", "info")), text=m.get("text", ""), time=m.get("time", ""))
            for m in (get("messages") or [])
        ),
        created=iso(run.created_at) or "",
        started=iso(run.started_at),
        finished=iso(run.finished_at),
        updated=iso(run.updated_at) or iso(run.created_at) or "",
        outputs=outputs,
        output_links=dict(get("output_links") or {}),
        error=get("error"),
        request=dict(get("request") or {}),
        tier_used=Tier(run.tier_used) if get("tier_used") else None,
        dismissed=get("dismissed_at") is not None,
        trace_parent=get("trace_parent") or None,
        progress_message=get("progress_message") or "",
    )


def run_result_load(*, run_id: uuid.UUID | str, live_outputs: dict[str, Any] | None = None) -> ExecutionResult:
    """Reload a run after inline execution (live outputs avoid re-reading spilled artifacts)."""
    fields = [f.name for f in ProcessRun._meta.concrete_fields if f.name not in ("inputs",)]
    if live_outputs is not None:
        fields.remove("outputs")
    run = ProcessRun.objects.only(*fields).get(id=run_id)
    return _result_from_run(run, live_outputs if run.status == RunStatus.SUCCEEDED else None)
