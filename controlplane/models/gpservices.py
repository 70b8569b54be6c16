"""GP services: catalog processes grouped under folders for the GPServer surface."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from controlplane.contracts import GPExecutionType

# The Python client generates code from service and task names: identifiers only.
SERVICE_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Folder names are one URL path segment; "" is the root folder.
FOLDER_NAME_RE = r"^([A-Za-z0-9][A-Za-z0-9_-]*)?$"


class GPService(models.Model):
    """A GP service at ``/arcgis/rest/services/[<folder>/]<name>/GPServer``."""

    folder = models.CharField(
        max_length=100, blank=True, default="", help_text="Empty for the root folder."
    )
    name = models.CharField(max_length=100, help_text="Letters, digits and underscores.")
    description = models.TextField(blank=True)
    execution_type = models.CharField(
        max_length=32,
        choices=[(t.value, t.value) for t in GPExecutionType],
        default=GPExecutionType.ASYNC.value,
        help_text="What Esri clients follow; every task still accepts execute and submitJob.",
    )
    maximum_records = models.PositiveIntegerField(default=1000)
    enabled = models.BooleanField(default=True)
    # Catalog bookkeeping: the sync leaves operators' services alone.
    catalog_sha256 = models.CharField(
        max_length=64, blank=True, editable=False, help_text="Shipped YAML last synced (empty: made in the admin)."
    )
    operator_edited = models.BooleanField(
        default=False, help_text="Changed in the admin: `sync_catalog` no longer updates it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["folder", "name"]
        verbose_name = "GP service"
        constraints = [
            # Esri service URLs are matched without regard to case.
            models.UniqueConstraint(Lower("folder"), Lower("name"), name="gpservice_folder_name_uniq"),
            models.CheckConstraint(condition=Q(name__regex=SERVICE_NAME_RE), name="gpservice_name_valid"),
            models.CheckConstraint(condition=Q(folder__regex=FOLDER_NAME_RE), name="gpservice_folder_valid"),
            models.CheckConstraint(
                condition=Q(execution_type__in=[t.value for t in GPExecutionType]),
                name="gpservice_execution_type_valid",
            ),
            models.CheckConstraint(condition=Q(maximum_records__gte=1), name="gpservice_max_records_pos"),
        ]
        indexes = [
            models.Index(fields=["enabled", "folder"], name="gpservice_enabled_folder_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.folder}/{self.name}" if self.folder else self.name


class GPServiceTask(models.Model):
    """One catalog process offered as a task of a GP service, in display order."""

    service = models.ForeignKey(GPService, on_delete=models.CASCADE, related_name="tasks")
    process_id = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["service", "position", "process_id"]
        verbose_name = "GP service task"
        constraints = [
            models.UniqueConstraint(fields=["service", "process_id"], name="gpservicetask_service_process_uniq"),
        ]
        indexes = [
            models.Index(fields=["service", "position"], name="gpservicetask_position_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service}:{self.process_id}"
