"""``manage.py apikey_create <username> <tenant> --name ci [--days 90]``: print a new API key once."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from controlplane.exceptions import HonuaError
from controlplane.models import Tenant
from controlplane.services.auth import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a member of a tenant and print it (it is not stored, only its hash)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--name", default="API key")
        parser.add_argument("--days", type=int, default=0, help="expire after this many days (0: never)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if user is None or tenant is None:
            raise CommandError(f"no user {options['username']!r}" if user is None else f"no tenant {options['tenant']!r}")
        expires = timezone.now() + timedelta(days=options["days"]) if options["days"] > 0 else None
        try:
            key, raw = api_key_create(
                tenant_id=tenant.pk, user_id=user.pk, name=options["name"], expires_at=expires, actor="manage.py"
            )
        except HonuaError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"API key {key.name!r} (hk_{key.prefix}_...) of {user} in {tenant.slug}; "
                          "shown once, keep it now:")
        self.stdout.write(raw)
