"""The worker loop of AWS Batch completion events: long-poll the SQS queue, finish runs."""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections


class Command(BaseCommand):
    help = "Consume AWS Batch job state change events from HONUA_BATCH_SQS_QUEUE_URL (a loop)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one receive, then exit")
        parser.add_argument("--wait", type=int, default=20, help="long-polling seconds (0-20)")

    def handle(self, *args: Any, **options: Any) -> None:
        from controlplane.services.batch_events import batch_events_consume

        if not settings.HONUA["BATCH"].get("SQS_QUEUE_URL"):
            raise CommandError("HONUA_BATCH_SQS_QUEUE_URL is not set")
        stop = {"now": False}

        def request_stop(signum: int, frame: Any) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        total = 0
        while True:
            close_old_connections()
            total += batch_events_consume(wait_seconds=options["wait"])
            if options["once"] or stop["now"]:
                break
        self.stdout.write(f"handled {total} message(s)")
