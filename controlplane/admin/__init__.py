"""Admin registrations, by domain. Operators (superusers) see everything; tenant
administrators see and edit their tenants' users, keys, access rules, policy overrides
(within the operator's bounds) and runs; every change is audited (see ``scope``)."""

from controlplane.admin import catalog, identity, runs, tenancy

__all__ = ["catalog", "identity", "runs", "tenancy"]
