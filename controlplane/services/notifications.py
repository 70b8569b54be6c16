"""Subscriber callbacks: delivered with retries, each attempt recorded on the run.

Every delivery goes through the SSRF guard (``outbound``) with the run's tenant's allow-list;
a refused URL is recorded once and not retried.

The payload is the surface's business (OGC: results document, exception, statusInfo), so
adapters register a builder per surface; the control plane owns delivery and the record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from controlplane.contracts import ExecutionResult, Principal, RunStatus
from controlplane.models import ProcessRun
from controlplane.services.outbound import OutboundFailed, OutboundRefused, outbound_post_json
from controlplane.services.runs import run_record_callback

log = logging.getLogger("honua.notifications")

PayloadBuilder = Callable[[ExecutionResult, dict[str, Any], str], Any]
_builders: dict[str, PayloadBuilder] = {}

EVENT_URI = {"success": "success_uri", "failed": "failed_uri", "in_progress": "in_progress_uri"}


def payload_builder_register(surface: str, builder: PayloadBuilder) -> None:
    """Adapters call this in AppConfig.ready() for the runs submitted on their surface."""
    _builders[surface] = builder


def event_for_status(status: RunStatus) -> str | None:
    if status is RunStatus.SUCCEEDED:
        return "success"
    if status in (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELLED):
        return "failed"
    if status is RunStatus.RUNNING:
        return "in_progress"
    return None


def run_notify(*, run_id: str, event: str) -> list[dict[str, Any]]:
    """Deliver one event of a run to its subscriber URI (if any); returns the attempts."""
    from controlplane.selectors import run_get, run_outputs

    row = ProcessRun.objects.filter(id=run_id).select_related("tenant").only(
        "id", "subscriber", "surface", "tenant__slug"
    ).first()
    if row is None or not row.subscriber:
        return []
    uri = row.subscriber.get(EVENT_URI[event])
    builder = _builders.get(row.surface)
    if not uri or builder is None:
        return []
    principal = Principal(tenant=row.tenant.slug, username="callbacks")
    if event == "success":
        result, values = run_outputs(principal=principal, run_id=run_id)
    else:
        result, values = run_get(principal=principal, run_id=run_id), {}
    payload = builder(result, values, event)
    attempts: list[dict[str, Any]] = []
    total = max(1, int(settings.HONUA["CALLBACK_ATTEMPTS"]))
    for attempt in range(1, total + 1):
        record: dict[str, Any] = {"event": event, "uri": uri, "attempt": attempt, "at": timezone.now().isoformat()}
        try:
            status = outbound_post_json(uri, payload, tenant=row.tenant.slug)
            record["status"] = status
            record["ok"] = 200 <= status < 300
        except OutboundRefused as exc:
            record.update(ok=False, error=exc.message)
            attempts.append(record)
            run_record_callback(run_id=run_id, delivery=record)
            break  # a refused URL will not become acceptable by retrying
        except OutboundFailed as exc:  # network errors and timeouts are retried
            record.update(ok=False, error=exc.message)
        attempts.append(record)
        run_record_callback(run_id=run_id, delivery=record)
        if record["ok"] or (400 <= record.get("status", 0) < 500 and record.get("status") != 429):
            break
        if attempt < total:
            time.sleep(min(30.0, 0.5 * 2 ** (attempt - 1)))
    if not attempts[-1].get("ok"):
        log.warning("callback delivery failed", extra={"run_id": run_id, "uri": uri, "event": event})
    return attempts
