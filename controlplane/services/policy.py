"""Who is asking and under which policy: tenant, definition and override resolution.

Lookups are cached for a couple of seconds per process so the hot path stays cheap while
an operator's change still applies to new requests within seconds, without a restart.
A tenant and its overrides are read together as one policy version (``TenantPolicy``);
runs record that version. Changes go through ``controlplane/services/policy_versions.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from controlplane.contracts import ExecutionMode, Principal, ProcessSpec, ResourceClass, Tier
from controlplane.exceptions import HonuaError, InvalidParameterValue, NoSuchProcess
from controlplane.models import ProcessDefinition, Tenant, TenantPolicyOverride
from controlplane.services.catalog import spec_from_definition
from controlplane.services.quotas import TenantQuotas, tenant_quotas_parse

CACHE_SECONDS = 2.0
T = TypeVar("T")
_cache: dict[tuple[str, ...], tuple[float, Any]] = {}
_cache_lock = threading.Lock()
_generation = 0  # bumped by every clear: a load that began before it must not be kept


def _cached(key: tuple[str, ...], load: Any) -> Any:
    now = time.monotonic()
    hit = _cache.get(key)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    generation = _generation
    value = load()
    with _cache_lock:
        if generation == _generation:
            _cache[key] = (now, value)
    return value


def policy_cached(key: tuple[str, ...], load: Callable[[], T]) -> T:
    """``load()`` cached like the policy lookups (other control-plane reads that must follow
    operators' changes within seconds); ``policy_cache_clear`` clears it too."""
    return cast(T, _cached(key, load))


def policy_cache_clear() -> None:
    global _generation
    with _cache_lock:
        _generation += 1
        _cache.clear()


@dataclass(frozen=True)
class TenantPolicy:
    """A tenant with its overrides and quotas, all of one policy version."""

    tenant: Tenant
    overrides: dict[str, TenantPolicyOverride]
    quotas: TenantQuotas

    @property
    def version(self) -> int:
        return self.tenant.policy_version


def _tenant_policy_load(slug: str) -> TenantPolicy:
    for _attempt in range(3):
        found = Tenant.objects.filter(slug=slug, is_active=True).first()
        tenant = found or Tenant.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]
        overrides = {o.process_id: o for o in TenantPolicyOverride.objects.filter(tenant=tenant)}
        # Every change raises the version in the transaction that makes it: if it is unchanged
        # after reading the overrides, they are the overrides of that version.
        if Tenant.objects.filter(pk=tenant.pk, policy_version=tenant.policy_version).exists():
            break
    try:
        quotas = tenant_quotas_parse(tenant.policy, strict=False)
    except InvalidParameterValue as exc:
        # Only reachable by writing the policy around the services (which validate it).
        raise HonuaError(f"the policy of tenant {slug!r} is invalid ({exc.message}); an operator must fix it") from exc
    return TenantPolicy(tenant=tenant, overrides=overrides, quotas=quotas)


def tenant_policy_get(slug: str) -> TenantPolicy:
    """The tenant, its overrides and quotas (cached like every policy lookup)."""
    return _cached(("tenant", slug), lambda: _tenant_policy_load(slug))


def tenant_get(slug: str) -> Tenant:
    return tenant_policy_get(slug).tenant


@dataclass(frozen=True)
class ResolvedProcess:
    """A current definition with the tenant's override applied."""

    definition: ProcessDefinition
    spec: ProcessSpec
    tier_order: tuple[Tier, ...]
    tiers_pinned: bool  # the tenant's override fixes the order: honour it as given
    resource_class: ResourceClass
    preferred_mode: ExecutionMode | None
    cost_cap: float | None
    policy_version: int  # the tenant's policy version (tenant policy and overrides together)
    handlers: dict[str, str]
    limits: dict[str, Any]


def _definitions() -> dict[str, ProcessDefinition]:
    return _cached(
        ("definitions",),
        lambda: {d.process_id: d for d in ProcessDefinition.objects.filter(is_current=True, enabled=True)},
    )


def _resolve(policy: TenantPolicy, defn: ProcessDefinition) -> ResolvedProcess | None:
    override = policy.overrides.get(defn.process_id)
    if override is not None and not override.enabled:
        return None
    spec = _cached(("spec", defn.process_id, str(defn.pk), str(defn.updated_at)), lambda: spec_from_definition(defn))
    tiers = tuple(Tier(t) for t in (override.tier_order if override and override.tier_order else defn.tier_order))
    return ResolvedProcess(
        definition=defn,
        spec=spec,
        tier_order=tiers,
        tiers_pinned=bool(override and override.tier_order),
        resource_class=ResourceClass(
            override.resource_class if override and override.resource_class else defn.resource_class
        ),
        preferred_mode=ExecutionMode(override.preferred_mode) if override and override.preferred_mode else None,
        cost_cap=override.cost_cap if override else None,
        policy_version=policy.version,
        handlers=dict(defn.spec.get("handlers", {})),
        limits=_limits(dict(defn.limits or {}), policy.quotas.process_limits(defn.process_id)),
    )


def _limits(definition: dict[str, Any], tenant: dict[str, int]) -> dict[str, Any]:
    """The definition's limits tightened by the tenant's (the stricter value wins)."""
    for key, value in tenant.items():
        definition[key] = min(definition[key], value) if definition.get(key) else value
    return definition


def process_resolve(
    *, principal: Principal, process_id: str, policy: TenantPolicy | None = None
) -> ResolvedProcess:
    """The process as this principal may run it; NoSuchProcess when absent or not allowed.
    ``policy``: the tenant policy already read for this request (one version throughout)."""
    policy = policy or tenant_policy_get(principal.tenant)
    defn = _definitions().get(process_id)
    resolved = _resolve(policy, defn) if defn is not None else None
    if resolved is None:
        raise NoSuchProcess(f"no process {process_id!r}")
    return resolved


def processes_resolve(*, principal: Principal) -> list[ResolvedProcess]:
    """Every process the principal may see, ordered by id."""
    policy = tenant_policy_get(principal.tenant)
    out = [_resolve(policy, d) for _, d in sorted(_definitions().items())]
    return [r for r in out if r is not None]
