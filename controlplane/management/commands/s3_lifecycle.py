"""``manage.py s3_lifecycle``: the S3 bucket's lifecycle rule for Honua's objects (run by setup;
nothing to do with the local store)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.services.artifacts import s3_lifecycle_install


class Command(BaseCommand):
    help = "Install the bucket lifecycle rule expiring Honua's S3 objects after HONUA_S3_RETENTION_DAYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="override HONUA_S3_RETENTION_DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.HONUA.get("ARTIFACT_STORE", "local") != "s3":
            self.stdout.write("artifact store is not s3: no lifecycle rule to install")
            return
        days = options["days"] if options["days"] is not None else int(settings.HONUA["S3_RETENTION_DAYS"])
        if days < 1:
            raise CommandError("the retention must be at least 1 day")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            rule = s3_lifecycle_install(days=days)
        except (BotoCoreError, ClientError) as exc:
            raise CommandError(f"bucket {settings.HONUA['S3_BUCKET']!r}: {exc}") from exc
        self.stdout.write(
            f"bucket {settings.HONUA['S3_BUCKET']!r}: rule {rule['ID']!r} expires objects tagged "
            f"honua-retention=ttl under {settings.HONUA.get('S3_PREFIX') or '(the whole bucket)'} after {days} days"
        )
