"""Re-running a recorded run: its process, inputs and request submitted anew through the
control plane (admission, quotas, scheduling and the ledger as for any submission)."""

from __future__ import annotations

import uuid

from django.db import transaction

from controlplane.contracts import (
    ExecutionMode,
    ExecutionRequest,
    ExecutionResult,
    OutputRequest,
    Principal,
    Surface,
)
from controlplane.exceptions import HonuaError, ModeNotSupported, NoSuchJob
from controlplane.models import ProcessRun
from controlplane.services.audit import audit_record
from controlplane.services.execution import run_submit
from controlplane.services.layerrefs import layer_refs_restore
from controlplane.services.policy import process_resolve


def rerun_request(*, run: ProcessRun, principal: Principal) -> ExecutionRequest:
    """The request that submits ``run`` again, async, as ``principal``: same process, inputs
    and output requests; no subscriber (the client did not ask for this run) and a new trace."""
    stored = run.request or {}
    return ExecutionRequest(
        process_id=run.process_id,
        inputs=layer_refs_restore(run.inputs),
        principal=principal,
        surface=Surface(run.surface),
        mode=ExecutionMode.ASYNC,
        outputs={name: OutputRequest(**spec) for name, spec in (stored.get("outputs") or {}).items()},
        response=stored.get("response") or "raw",
        out_srid=stored.get("out_srid"),
        process_srid=stored.get("process_srid"),
        options={**(stored.get("options") or {}), "rerun_of": str(run.id)},
        request_bytes=run.input_bytes,
    )


def run_rerun(*, run_id: uuid.UUID | str, tenant_id: int, principal: Principal) -> ExecutionResult:
    """Submit a run of the tenant again (async) as ``principal``, a member of that tenant;
    the new run is audited as a re-run of the old one in the transaction that records it."""
    run = ProcessRun.objects.select_related("tenant").filter(id=run_id, tenant_id=tenant_id).first()
    if run is None or run.tenant.slug != principal.tenant:
        raise NoSuchJob(f"no job {run_id}")
    spec = process_resolve(principal=principal, process_id=run.process_id).spec
    if ExecutionMode.ASYNC not in spec.modes:
        raise ModeNotSupported(f"process {run.process_id!r} runs only sync: a client runs it again")
    refused: HonuaError | None = None
    with transaction.atomic():
        try:
            result = run_submit(rerun_request(run=run, principal=principal))
        except HonuaError as exc:
            # Kept out of the transaction's way: a refusal's own audit event still commits.
            refused = exc
        else:
            audit_record(
                action="run.rerun", object_type="run", object_id=str(run.id), actor=principal.username,
                tenant_id=tenant_id, before={"run": str(run.id), "status": run.status},
                after={"run": str(result.run_id), "status": result.status.value},
            )
    if refused is not None:
        raise refused
    return result
