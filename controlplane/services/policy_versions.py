"""Versioned policy changes: the only writers of a tenant's policy and its overrides.

Every change raises the tenant's policy version (one number for the tenant policy and all
its overrides; runs record it), keeps a ``PolicyRevision`` with the values before and
after, and writes an audit event, all in the transaction of the change. The tenant row is
locked first, so concurrent changes get consecutive versions. New requests see a change
within the policy cache period (2 s) in every process, at once in this one.

An operator's save of an override records its values as the override's ``operator_bounds``;
a tenant administrator's save (``delegated``) must stay within them and within what the
process's definition offers (README "The admin: operators and tenant administrators").
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from controlplane.contracts import ExecutionMode, ResourceClass, Tier
from controlplane.exceptions import InvalidParameterValue, NoSuchProcess, PermissionDenied
from controlplane.models import PolicyRevision, ProcessDefinition, Tenant, TenantPolicyOverride
from controlplane.models.tenancy import OPERATOR_BOUND_FIELDS
from controlplane.services.audit import audit_record
from controlplane.services.outbound import POLICY_KEY, outbound_allow_hosts_parse
from controlplane.services.policy import policy_cache_clear
from controlplane.services.quotas import tenant_quotas_parse

OVERRIDE_FIELDS = ("enabled", "tier_order", "preferred_mode", "resource_class", "cost_cap")


def override_snapshot(override: TenantPolicyOverride) -> dict[str, Any]:
    """The policy values of an override, as revisions keep them."""
    return {
        "process_id": override.process_id,
        **{f: getattr(override, f) for f in OVERRIDE_FIELDS},
        "operator_bounds": override.operator_bounds,
    }


def override_bounds(override: TenantPolicyOverride) -> dict[str, Any]:
    """The values an operator's save records as the bounds of tenant administrators' edits."""
    return {f: getattr(override, f) for f in OPERATOR_BOUND_FIELDS}


def override_within_bounds(override: TenantPolicyOverride, *, bounds: dict[str, Any] | None) -> None:
    """PermissionDenied unless a tenant administrator's override stays within the operator's
    ``bounds`` (None: the operator set none) and what the current definition offers: it may
    turn the process off, order a subset of the tiers, prefer a supported mode and cap the
    cost (at most the operator's cap); the resource class stays the operator's."""
    pid = override.process_id
    defn = ProcessDefinition.objects.filter(process_id=pid, is_current=True).first()
    if defn is None:
        raise InvalidParameterValue(f"no process {pid!r}")
    bounds = bounds or {}
    pinned = list(bounds.get("tier_order") or [])
    offered = pinned or list(defn.tier_order)
    for tier in override.tier_order or []:
        if tier not in offered:
            whose = "the operator's tier order" if pinned else f"the tiers of {pid!r}"
            raise PermissionDenied(f"tier_order: {tier!r} is not among {whose} ({', '.join(offered)})")
    if pinned and not override.tier_order:
        raise PermissionDenied(f"tier_order: the operator pinned {', '.join(pinned)}; order some of them")
    modes = defn.spec.get("modes", [m.value for m in ExecutionMode])
    if override.preferred_mode and override.preferred_mode not in modes:
        raise PermissionDenied(f"preferred_mode: {pid!r} runs only {', '.join(modes)}")
    if override.resource_class != bounds.get("resource_class", ""):
        raise PermissionDenied("resource_class: only an operator changes the resource class")
    if override.enabled and bounds.get("enabled") is False:
        raise PermissionDenied(f"enabled: the operator turned {pid!r} off for this tenant")
    cap = bounds.get("cost_cap")
    if cap is not None and (override.cost_cap is None or override.cost_cap > cap):
        raise PermissionDenied(f"cost_cap: at most {cap:g}, the operator's cap")


def tenant_policy_validate(policy: Any) -> None:
    """InvalidParameterValue unless ``policy`` is a valid tenant policy (README)."""
    tenant_quotas_parse(policy, strict=True)
    outbound_allow_hosts_parse(policy.get(POLICY_KEY) if isinstance(policy, dict) else None)


def override_validate(override: TenantPolicyOverride) -> None:
    """InvalidParameterValue unless the override's values are usable."""
    if not override.process_id:
        raise InvalidParameterValue("an override names its process")
    tiers = override.tier_order or []
    if not isinstance(tiers, list) or not all(isinstance(t, str) for t in tiers):
        raise InvalidParameterValue("tier_order must be a list of tier names")
    valid = {t.value for t in Tier}
    for tier in tiers:
        if tier not in valid:
            raise InvalidParameterValue(f"tier_order: {tier!r} is not a tier; tiers are: " + ", ".join(sorted(valid)))
    if len(set(tiers)) != len(tiers):
        raise InvalidParameterValue("tier_order names a tier twice")
    if override.preferred_mode and override.preferred_mode not in {m.value for m in ExecutionMode}:
        raise InvalidParameterValue(f"preferred_mode: {override.preferred_mode!r} is not sync or async")
    if override.resource_class and override.resource_class not in {c.value for c in ResourceClass}:
        raise InvalidParameterValue(f"resource_class: {override.resource_class!r} is not a resource class")
    if override.cost_cap is not None and override.cost_cap < 0:
        raise InvalidParameterValue("cost_cap must be >= 0")


def _record(
    *,
    tenant: Tenant,
    version: int,
    kind: PolicyRevision.Kind,
    process_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    actor: str,
) -> PolicyRevision:
    revision = PolicyRevision.objects.create(
        tenant=tenant, version=version, kind=kind, process_id=process_id, before=before, after=after, actor=actor
    )
    audit_record(
        action="policy.change",
        object_type="tenant_policy" if kind == PolicyRevision.Kind.TENANT else "policy_override",
        object_id=tenant.slug if kind == PolicyRevision.Kind.TENANT else f"{tenant.slug}:{process_id}",
        actor=actor,
        tenant_id=tenant.pk,
        before=before,
        after=after,
        detail=f"policy version {version}",
    )
    # This process applies the change to its next request (also in this transaction, and once
    # more at commit, after anything cached meanwhile); the others within the cache period.
    policy_cache_clear()
    transaction.on_commit(policy_cache_clear)
    return revision


def _bump(tenant_id: int) -> tuple[Tenant, int]:
    """Lock the tenant and raise its policy version; returns the tenant and the new version."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    tenant.policy_version += 1
    Tenant.objects.filter(pk=tenant.pk).update(policy_version=tenant.policy_version)
    return tenant, tenant.policy_version


@transaction.atomic
def tenant_save(*, tenant: Tenant, actor: str) -> Tenant:
    """Create or update a tenant (e.g. from the admin form); a changed policy raises the
    version and keeps a revision. Returns the saved tenant."""
    tenant_policy_validate(tenant.policy)
    if tenant.pk is None:
        tenant.policy_version = 1
        tenant.save(force_insert=True)
        _record(
            tenant=tenant, version=1, kind=PolicyRevision.Kind.TENANT, process_id="",
            before=None, after={"policy": tenant.policy}, actor=actor,
        )
        return tenant
    stored = Tenant.objects.select_for_update().get(pk=tenant.pk)
    tenant.policy_version = stored.policy_version
    if stored.policy != tenant.policy:
        tenant.policy_version += 1
        _record(
            tenant=tenant, version=tenant.policy_version, kind=PolicyRevision.Kind.TENANT, process_id="",
            before={"policy": stored.policy}, after={"policy": tenant.policy}, actor=actor,
        )
    tenant.save()
    return tenant


def tenant_policy_set(*, tenant_id: int, policy: dict[str, Any], actor: str) -> Tenant:
    """Replace a tenant's policy (quotas, limits); see ``tenant_save``."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        tenant.policy = policy
        return tenant_save(tenant=tenant, actor=actor)


@transaction.atomic
def policy_override_save(
    *, override: TenantPolicyOverride, actor: str, delegated: bool = False
) -> TenantPolicyOverride:
    """Create or update a tenant's override of one process (e.g. from the admin form); a
    change raises the tenant's policy version, which the override records. ``delegated``: a
    tenant administrator's save, within the operator's bounds; otherwise an operator's, whose
    values become the bounds."""
    override_validate(override)
    tenant = Tenant.objects.select_for_update().get(pk=override.tenant_id)
    stored = TenantPolicyOverride.objects.filter(pk=override.pk).first() if override.pk else None
    if stored is not None and stored.tenant_id != tenant.pk:
        raise InvalidParameterValue("an override stays with its tenant; delete it and create another")
    if not delegated:
        override.operator_bounds = override_bounds(override)
    elif stored is not None and stored.process_id != override.process_id:
        raise PermissionDenied("an override stays with its process; delete it and create another")
    else:
        override.operator_bounds = stored.operator_bounds if stored is not None else None
        override_within_bounds(override, bounds=override.operator_bounds)
    before = override_snapshot(stored) if stored is not None else None
    after = override_snapshot(override)
    if before == after:
        return override
    tenant, version = _bump(tenant.pk)
    override.version = version
    override.save()
    _record(
        tenant=tenant, version=version, kind=PolicyRevision.Kind.OVERRIDE, process_id=override.process_id,
        before=before, after=after, actor=actor,
    )
    return override


def policy_override_set(
    *, tenant_id: int, process_id: str, actor: str, **values: Any
) -> TenantPolicyOverride:
    """Create or change the override of ``process_id`` with ``values`` (fields of
    ``OVERRIDE_FIELDS``); see ``policy_override_save``."""
    unknown = sorted(set(values) - set(OVERRIDE_FIELDS))
    if unknown:
        raise InvalidParameterValue(f"not an override field: {unknown[0]!r}")
    with transaction.atomic():
        Tenant.objects.select_for_update().get(pk=tenant_id)
        override = TenantPolicyOverride.objects.filter(tenant_id=tenant_id, process_id=process_id).first()
        if override is None:
            override = TenantPolicyOverride(tenant_id=tenant_id, process_id=process_id)
        for name, value in values.items():
            setattr(override, name, value)
        return policy_override_save(override=override, actor=actor)


@transaction.atomic
def policy_override_delete(*, override_id: int, actor: str, delegated: bool = False) -> int:
    """Remove an override (the process follows its definition again); returns the new
    policy version. ``delegated``: a tenant administrator's, who removes only their own."""
    tenant_id = TenantPolicyOverride.objects.filter(pk=override_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        raise NoSuchProcess(f"no policy override {override_id}")
    tenant, version = _bump(tenant_id)
    override = TenantPolicyOverride.objects.filter(pk=override_id).first()
    if override is None:  # deleted meanwhile: roll the version back
        raise NoSuchProcess(f"no policy override {override_id}")
    if delegated and override.operator_bounds is not None:
        raise PermissionDenied("an operator's override stays; change it within its bounds")
    before = override_snapshot(override)
    override.delete()
    _record(
        tenant=tenant, version=version, kind=PolicyRevision.Kind.OVERRIDE, process_id=before["process_id"],
        before=before, after=None, actor=actor,
    )
    return version
