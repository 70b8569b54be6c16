"""Principal-level job actions for the adapters: one call each, answered with the job."""

from __future__ import annotations

import uuid

from controlplane.contracts import ExecutionResult, Principal
from controlplane.selectors import run_get, run_id_parse
from controlplane.services.policy import tenant_get
from controlplane.services.runs import run_cancel, run_dismiss


def job_cancel(*, principal: Principal, run_id: str | uuid.UUID) -> ExecutionResult:
    """Cancel a job of the principal's tenant (NoSuchJob for anyone else's)."""
    rid = run_id_parse(run_id)
    run_cancel(run_id=rid, tenant_id=tenant_get(principal.tenant).pk, actor=principal.username)
    return run_get(principal=principal, run_id=rid)


def job_dismiss(*, principal: Principal, run_id: str | uuid.UUID) -> ExecutionResult:
    """Dismiss a job: stop it if active, remove its results; the ledger row stays."""
    rid = run_id_parse(run_id)
    run_dismiss(run_id=rid, tenant_id=tenant_get(principal.tenant).pk, actor=principal.username)
    return run_get(principal=principal, run_id=rid)
