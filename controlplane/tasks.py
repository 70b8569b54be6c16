"""django-q2 entry points. Dotted paths are stored in the queue: treat them as public names."""

from __future__ import annotations

from controlplane.services.execution import run_execute as _run_execute
from controlplane.services.runs import runs_expire_results, runs_reap_expired


def run_execute(run_id: str) -> str:
    """Claim and execute one queued run."""
    return _run_execute(run_id)


def runs_reap() -> dict[str, int]:
    """Periodic: requeue runs whose worker vanished."""
    return runs_reap_expired()


def results_expire() -> int:
    """Periodic: remove results and artifacts past their TTL."""
    return runs_expire_results()


def run_notify(run_id: str, event: str) -> int:
    """Deliver a subscriber callback (attempts are recorded on the run)."""
    from controlplane.services.notifications import run_notify as _notify

    return len(_notify(run_id=run_id, event=event))


def uploads_expire() -> int:
    """Periodic: remove uploads past their expiry, with their bytes."""
    from controlplane.services.uploads import uploads_expire as _expire

    return _expire()


def layers_expire() -> int:
    """Periodic: remove layers past their expiry, with their tables or files."""
    from controlplane.services.layers import layers_expire as _expire

    return _expire()
