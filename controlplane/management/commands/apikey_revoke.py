"""``manage.py apikey_revoke <prefix>``: revoke an API key by its visible prefix."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.models import ApiKey
from controlplane.services.auth import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, named by its prefix (the 12 hex digits after hk_)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["prefix"].removeprefix("hk_").split("_")[0]
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"no API key with prefix {prefix!r}")
        revoked = api_key_revoke(key_id=key.pk, actor="manage.py")
        self.stdout.write(f"revoked {key}" if revoked else f"{key} was already revoked")
