"""Which processes a principal may see and run, and which jobs it may change.

Rules (``ProcessAccess``) are per tenant and audience (a membership role, or anonymous); a
rule naming the process beats a ``*`` rule. Without a rule: admins and editors may, viewers
may not (they read the tenant's jobs), anonymous callers follow ``HONUA_ANONYMOUS``. A
process a principal may not run is not listed and is "not found" when named, except to an
anonymous caller, who is told to authenticate (the catalog is the same for every tenant, so
its names are no secret; a tenant's objects are).
"""

from __future__ import annotations

from django.conf import settings

from controlplane.contracts import Principal
from controlplane.exceptions import NoSuchProcess, NotAuthenticated, PermissionDenied
from controlplane.models import ProcessAccess
from controlplane.models.identity import ANONYMOUS, Role
from controlplane.services.policy import policy_cached, tenant_get

Rules = dict[tuple[str, str], bool]  # (process id or "*", audience) -> allowed


def is_anonymous(principal: Principal) -> bool:
    return principal.user_id is None and not principal.roles


def audiences(principal: Principal) -> tuple[str, ...]:
    """The audiences rules are matched against: the principal's roles, or anonymous."""
    return (ANONYMOUS,) if is_anonymous(principal) else tuple(principal.roles)


def _rules(tenant_slug: str) -> Rules:
    def load() -> Rules:
        rows = ProcessAccess.objects.filter(tenant_id=tenant_get(tenant_slug).pk).values_list(
            "process_id", "audience", "allowed"
        )
        return {(pid, audience): allowed for pid, audience, allowed in rows}

    return policy_cached(("access", tenant_slug), load)


def _default(audience: str) -> bool:
    if audience == ANONYMOUS:
        return bool(settings.HONUA.get("ANONYMOUS", True))
    return audience in (Role.ADMIN.value, Role.EDITOR.value)


def _allowed(rules: Rules, audience: str, process_id: str) -> bool:
    found = rules.get((process_id, audience))
    if found is None:
        found = rules.get((ProcessAccess.ANY_PROCESS, audience))
    return _default(audience) if found is None else found


def process_allowed(*, principal: Principal, process_id: str) -> bool:
    """May the principal see and run this process?"""
    rules = _rules(principal.tenant)
    return any(_allowed(rules, audience, process_id) for audience in audiences(principal))


def process_access_check(*, principal: Principal, process_id: str) -> None:
    """Raise unless the principal may run this (existing) process: NotAuthenticated for an
    anonymous caller, NoSuchProcess for anyone else (as for a process that does not exist)."""
    if process_allowed(principal=principal, process_id=process_id):
        return
    if is_anonymous(principal):
        raise NotAuthenticated(f"process {process_id!r} requires authentication: send a token or an API key")
    raise NoSuchProcess(f"no process {process_id!r}")


def anonymous_allowed(*, tenant_slug: str) -> bool:
    """Does the tenant let anonymous callers run anything at all?"""
    rules = _rules(tenant_slug)
    if _allowed(rules, ANONYMOUS, ProcessAccess.ANY_PROCESS):
        return True
    return any(allowed for (_, audience), allowed in rules.items() if audience == ANONYMOUS)


def run_change_check(*, principal: Principal, owner_id: int | None) -> None:
    """Viewers read the tenant's jobs but change (cancel, delete) only the ones they started."""
    read_only = set(principal.roles) == {Role.VIEWER.value}
    if read_only and owner_id != principal.user_id:
        raise PermissionDenied("a viewer may cancel or delete only the jobs it submitted")
