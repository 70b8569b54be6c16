"""Catalog layers of a tenant: registered tables, hosted tables (schema ``honua_data``) and
files read through GDAL."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

COLLECTION_ID_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
HOSTED_SCHEMA = "honua_data"
FIELD_TYPES = ("string", "integer", "number", "boolean", "datetime")


class Layer(models.Model):
    """One layer of a tenant's catalog (an OGC API - Features collection)."""

    class Kind(models.TextChoices):
        TABLE = "table", "table (registered by an operator)"
        HOSTED = "hosted", "hosted table (honua_data)"
        FILE = "file", "file (read through GDAL)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, related_name="layers")
    collection_id = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # table / hosted
    schema_name = models.CharField(max_length=63, blank=True)
    table_name = models.CharField(max_length=63, blank=True)
    geometry_column = models.CharField(max_length=63, blank=True)
    id_column = models.CharField(max_length=63, blank=True)
    # file
    artifact = models.ForeignKey(
        "controlplane.Artifact", null=True, blank=True, on_delete=models.PROTECT, related_name="layers"
    )
    format = models.CharField(max_length=40, blank=True, help_text="GDAL driver of a file layer.")
    sublayer = models.CharField(max_length=255, blank=True)
    open_options = models.JSONField(default=dict, blank=True)
    # what the data is
    srid = models.PositiveIntegerField()
    geometry_type = models.CharField(max_length=20)
    fields = models.JSONField(default=list, blank=True, help_text='[{"name", "type", "column"}]')
    feature_count = models.PositiveBigIntegerField(default=0)
    extent = models.JSONField(null=True, blank=True, help_text="[minx, miny, maxx, maxy] in EPSG:4326")
    source_name = models.CharField(max_length=255, blank=True, help_text="The file name it came from.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey(
        "controlplane.ProcessRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="layers"
    )

    class Meta:
        ordering = ["tenant", "collection_id"]
        indexes = [
            models.Index(fields=["expires_at"], name="layer_expires_idx", condition=Q(expires_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "collection_id"], name="layer_tenant_collection_uniq"),
            models.CheckConstraint(condition=Q(collection_id__regex=COLLECTION_ID_RE), name="layer_collection_id_valid"),
            models.CheckConstraint(condition=Q(kind__in=["table", "hosted", "file"]), name="layer_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind="file", artifact__isnull=False)
                | (Q(kind__in=["table", "hosted"]) & ~Q(schema_name="") & ~Q(table_name="") & ~Q(geometry_column="")
                   & ~Q(id_column="")),
                name="layer_storage_complete",
            ),
            models.CheckConstraint(condition=~Q(kind="hosted") | Q(schema_name=HOSTED_SCHEMA), name="layer_hosted_schema"),
            models.CheckConstraint(condition=Q(srid__gt=0), name="layer_srid_pos"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.collection_id}"
