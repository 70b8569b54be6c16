"""Admin registrations, by domain. Operators (superusers) see everything; tenant
administrators see and edit their tenants' users, keys, access rules, policy overrides
(within the operator's bounds) and runs; every change is audited (see ``scope``)."""

from django.contrib import admin

from controlplane.admin import catalog, identity, layers, runs, tenancy
from controlplane.admin.scope import AuditedAdmin

__all__ = ["catalog", "identity", "layers", "runs", "tenancy"]


def _audit_other_apps(site: admin.AdminSite) -> None:
    """The admins of other apps (groups, the task queue) audit their changes too. Autodiscovery
    imports admin modules in INSTALLED_APPS order: the apps before this one have registered."""
    for model, model_admin in list(site._registry.items()):
        if not isinstance(model_admin, AuditedAdmin):
            audited = type(f"Audited{type(model_admin).__name__}", (AuditedAdmin, type(model_admin)), {})
            site.unregister(model)
            site.register(model, audited)


_audit_other_apps(admin.site)
