"""Control-plane models, split by domain."""

from controlplane.models.audit import AuditEvent
from controlplane.models.catalog import ProcessDefinition
from controlplane.models.gpservices import GPService, GPServiceTask
from controlplane.models.identity import ApiKey, Membership, ProcessAccess
from controlplane.models.layers import Layer
from controlplane.models.runs import Artifact, ProcessRun
from controlplane.models.tenancy import PolicyRevision, Tenant, TenantPolicyOverride
from controlplane.models.uploads import UploadItem, UploadPart
from controlplane.models.usage import TenantRateCounter, TenantUsage

__all__ = [
    "ApiKey",
    "Artifact",
    "AuditEvent",
    "GPService",
    "GPServiceTask",
    "Layer",
    "Membership",
    "ProcessAccess",
    "PolicyRevision",
    "ProcessDefinition",
    "ProcessRun",
    "Tenant",
    "TenantPolicyOverride",
    "TenantRateCounter",
    "TenantUsage",
    "UploadItem",
    "UploadPart",
]
