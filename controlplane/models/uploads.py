"""Uploaded items (GPServer ``uploads``): files a client sends before referencing them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

ITEM_ID_RE = r"^i[0-9a-f]{32}$"


def new_item_id() -> str:
    """An Esri-style item id: ``i`` and 32 hex digits."""
    return "i" + uuid.uuid4().hex


class UploadItem(models.Model):
    """One uploaded file of a tenant: committed at once, or registered and sent in parts."""

    id = models.CharField(primary_key=True, max_length=33, default=new_item_id, editable=False)
    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.PROTECT, related_name="uploads")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    principal = models.CharField(max_length=150)
    item_name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    committed = models.BooleanField(default=False)
    size = models.PositiveBigIntegerField(default=0)
    media_type = models.CharField(max_length=200, blank=True, help_text="Sniffed from the content.")
    sha256 = models.CharField(max_length=64, blank=True)
    artifact = models.OneToOneField(
        "controlplane.Artifact", null=True, blank=True, on_delete=models.CASCADE, related_name="upload"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="upload_tenant_created_idx"),
            models.Index(fields=["expires_at"], name="upload_expires_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(id__regex=ITEM_ID_RE), name="upload_id_valid"),
            models.CheckConstraint(
                condition=Q(committed=False) | (Q(artifact__isnull=False) & ~Q(media_type="")),
                name="upload_committed_has_bytes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.item_name}"


class UploadPart(models.Model):
    """One part of a registered, not yet committed upload."""

    upload = models.ForeignKey(UploadItem, on_delete=models.CASCADE, related_name="parts")
    part_number = models.PositiveIntegerField()
    artifact = models.OneToOneField("controlplane.Artifact", on_delete=models.CASCADE, related_name="+")
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["upload", "part_number"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "part_number"], name="uploadpart_number_uniq"),
            models.CheckConstraint(condition=Q(part_number__gte=1), name="uploadpart_number_pos"),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id} part {self.part_number}"
