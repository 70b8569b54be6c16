"""Audit trail writes; callers run them inside the transaction of the change they record."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, cast

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model

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


# --- changes of model rows (the admin) ---------------------------------------------------------

HIDDEN = "[hidden]"  # a secret's value in a snapshot
CHANGED = "changed"  # a secret that was set or changed: recorded as such, never its value


def audit_snapshot(obj: Model, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The row's field values (foreign keys as ids, many-to-many as sorted ids), JSON-safe.
    Kept in memory to compare; ``audit_change`` writes only what changed, secrets hidden."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name not in exclude:
            values[field.attname] = field.value_from_object(obj)
    if obj.pk is not None:
        for m2m in obj._meta.many_to_many:
            if m2m.name not in exclude:
                values[m2m.name] = sorted(getattr(obj, m2m.name).values_list("pk", flat=True))
    return cast(dict[str, Any], json.loads(json.dumps(values, cls=DjangoJSONEncoder)))


def _hide(values: dict[str, Any], secrets: Collection[str], marker: str) -> dict[str, Any]:
    return {k: (marker if k in secrets and v not in (None, "") else v) for k, v in values.items()}


def audit_change(
    *,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    actor: str,
    tenant_id: int | None = None,
    secrets: Collection[str] = (),
    detail: str = "",
) -> AuditEvent | None:
    """Record a created (``before`` None), changed or deleted (``after`` None) row with the
    fields that changed, before and after; None when nothing did. Secret fields show only
    that they changed."""
    if before is not None and after is not None:
        changed = [k for k in {**before, **after} if before.get(k) != after.get(k)]
        if not changed:
            return None
        before = {k: before.get(k) for k in changed}
        after = {k: after.get(k) for k in changed}
        before, after = _hide(before, secrets, HIDDEN), _hide(after, secrets, CHANGED)
    elif after is not None:
        after = _hide(after, secrets, CHANGED)
    elif before is not None:
        before = _hide(before, secrets, HIDDEN)
    return audit_record(
        action=action, object_type=object_type, object_id=object_id, actor=actor, tenant_id=tenant_id,
        before=before, after=after, detail=detail,
    )
