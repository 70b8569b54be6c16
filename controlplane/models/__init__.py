"""Control-plane models, split by domain."""

from controlplane.models.audit import AuditEvent
from controlplane.models.catalog import ProcessDefinition
from controlplane.models.runs import Artifact, ProcessRun
from controlplane.models.tenancy import Tenant, TenantPolicyOverride

__all__ = ["Artifact", "AuditEvent", "ProcessDefinition", "ProcessRun", "Tenant", "TenantPolicyOverride"]
