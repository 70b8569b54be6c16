"""``manage.py batch_lifecycle``: the lifecycle rule expiring jobs/ in the AWS Batch runner's
buckets after HONUA_BATCH_S3_RETENTION_DAYS (run by setup; nothing to do for the local runner)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Install the S3 lifecycle rule expiring jobs/ in the batch buckets (HONUA_BATCH_RUNNER=aws)."

    def handle(self, *args: Any, **options: Any) -> None:
        conf = settings.HONUA["BATCH"]
        if conf.get("RUNNER") != "aws":
            self.stdout.write("batch runner is not aws: no lifecycle rule to install")
            return
        from botocore.exceptions import BotoCoreError, ClientError

        from controlplane.services.batch_events import batch_buckets_lifecycle

        days = int(conf["S3_RETENTION_DAYS"])
        try:
            buckets = batch_buckets_lifecycle(days=days)
        except (BotoCoreError, ClientError) as exc:
            raise CommandError(f"batch buckets: {exc}") from exc
        self.stdout.write(f"jobs/ in {', '.join(buckets)} expires after {days} days")
