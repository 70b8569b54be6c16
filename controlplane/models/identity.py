"""Who may call Honua: memberships of users in tenants, API keys, and process access rules."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    """A member's role in a tenant."""

    ADMIN = "admin", "admin"
    EDITOR = "editor", "editor (member)"
    VIEWER = "viewer", "viewer"


ANONYMOUS = "anonymous"  # the audience of callers without credentials (not a membership role)


class Audience(models.TextChoices):
    """Whom a process access rule is about: a role, or anonymous callers."""

    ANONYMOUS = ANONYMOUS, "anonymous"
    ADMIN = Role.ADMIN.value, "admin"
    EDITOR = Role.EDITOR.value, "editor (member)"
    VIEWER = Role.VIEWER.value, "viewer"


class Membership(models.Model):
    """A Django user's membership of a tenant, with a role; tokens and keys act through it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="honua_memberships")
    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    is_active = models.BooleanField(default=True, help_text="Unset to revoke this member's tokens and keys.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_uniq"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "role"], name="membership_tenant_role_idx")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class ApiKey(models.Model):
    """An API key of a member: only a short prefix and the sha256 of the key are stored."""

    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="honua_api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, editable=False, help_text="Visible part of the key.")
    key_sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: does not expire.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["tenant", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(prefix__regex=r"^[0-9a-f]{12}$"), name="apikey_prefix_valid"),
            models.CheckConstraint(condition=Q(key_sha256__regex=r"^[0-9a-f]{64}$"), name="apikey_hash_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "user"], name="apikey_tenant_user_idx")]

    def __str__(self) -> str:
        return f"{self.name} (hk_{self.prefix}_…)"


class ProcessAccess(models.Model):
    """Per tenant and audience: may it see and run this process (``*``: every process)?

    A rule naming the process beats a ``*`` rule; without a rule, admins and editors may,
    viewers may not, and anonymous callers follow ``HONUA_ANONYMOUS``.
    """

    ANY_PROCESS = "*"

    tenant = models.ForeignKey("controlplane.Tenant", on_delete=models.CASCADE, related_name="process_access")
    process_id = models.CharField(max_length=100, help_text="A catalog process id, or * for every process.")
    audience = models.CharField(max_length=10, choices=Audience.choices)
    allowed = models.BooleanField(default=True, help_text="May see and run it (a process it may not run is hidden).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "process_id", "audience"]
        verbose_name_plural = "process access rules"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "process_id", "audience"], name="process_access_uniq"
            ),
            models.CheckConstraint(condition=Q(audience__in=Audience.values), name="process_access_audience_valid"),
        ]

    def __str__(self) -> str:
        verb = "may" if self.allowed else "may not"
        return f"{self.tenant}: {self.audience} {verb} run {self.process_id}"
