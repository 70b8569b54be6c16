"""Audit trail writes; callers run them inside the transaction of the change they record."""

from __future__ import annotations

from typing import Any

from controlplane.models import AuditEvent


def audit_record(
    *,
    action: str,
    object_type: str,
    object_id: str,
    actor: str = "",
    tenant_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str = "",
) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        actor=actor,
        tenant_id=tenant_id,
        before=before,
        after=after,
        detail=detail,
    )
