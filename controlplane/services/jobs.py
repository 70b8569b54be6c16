"""Principal-level job actions for the adapters: one call each, answered with the job."""

from __future__ import annotations

import uuid

from controlplane.contracts import ExecutionResult, Principal
from controlplane.selectors import run_get, run_id_parse, run_owner
from controlplane.services.access import run_change_check
from controlplane.services.policy import tenant_get
from controlplane.services.runs import run_cancel, run_dismiss


def _changeable(principal: Principal, run_id: str | uuid.UUID) -> uuid.UUID:
    """The run's id once it is known to be the caller's to change (NoSuchJob for a run the
    caller cannot see; PermissionDenied for a viewer and another member's job)."""
    rid = run_id_parse(run_id)
    run_change_check(principal=principal, owner_id=run_owner(principal=principal, run_id=rid))
    return rid


def job_cancel(*, principal: Principal, run_id: str | uuid.UUID) -> ExecutionResult:
    """Cancel a job of the principal's tenant (NoSuchJob for anyone else's)."""
    rid = _changeable(principal, run_id)
    run_cancel(run_id=rid, tenant_id=tenant_get(principal.tenant).pk, actor=principal.username)
    return run_get(principal=principal, run_id=rid)


def job_dismiss(*, principal: Principal, run_id: str | uuid.UUID) -> ExecutionResult:
    """Dismiss a job: stop it if active, remove its results; the ledger row stays."""
    rid = _changeable(principal, run_id)
    run_dismiss(run_id=rid, tenant_id=tenant_get(principal.tenant).pk, actor=principal.username)
    return run_get(principal=principal, run_id=rid)
