"""``manage.py ensure_demo``: the demo tenant, an admin user (an admin member of it) and the
periodic schedules."""

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django_q.models import Schedule

from controlplane.models import Membership, Tenant
from controlplane.models.identity import Role

SCHEDULES = [
    ("honua: requeue runs of lost workers", "controlplane.tasks.runs_reap", 1),
    ("honua: expire results", "controlplane.tasks.results_expire", 10),
    ("honua: expire uploads", "controlplane.tasks.uploads_expire", 30),
    ("honua: expire layers", "controlplane.tasks.layers_expire", 10),
]


class Command(BaseCommand):
    help = "Create the demo tenant, an admin user and the periodic tasks (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        slug = settings.HONUA["DEFAULT_TENANT"]
        tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": "Demo tenant"})
        if created:
            self.stdout.write(f"created tenant {tenant.slug}")
        for name, func, minutes in SCHEDULES:
            Schedule.objects.update_or_create(
                name=name,
                defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
            )
        User = get_user_model()
        username = os.environ.get("HONUA_ADMIN_USER", "admin")
        admin = User.objects.filter(username=username).first()
        if admin is None:
            password = os.environ.get("HONUA_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(
                username=username, email=os.environ.get("HONUA_ADMIN_EMAIL", ""), password=password
            )
            shown = "(from HONUA_ADMIN_PASSWORD)" if os.environ.get("HONUA_ADMIN_PASSWORD") else password
            self.stdout.write(f"created admin user {username!r} with password {shown}")
        # The admin is the demo tenant's admin: its tokens, keys and browser session act there.
        _, joined = Membership.objects.get_or_create(user=admin, tenant=tenant, defaults={"role": Role.ADMIN})
        if joined:
            self.stdout.write(f"made {username!r} an admin of tenant {tenant.slug}")
