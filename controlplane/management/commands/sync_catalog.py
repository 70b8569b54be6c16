"""``manage.py sync_catalog``: load the YAML catalog into ProcessDefinition rows."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from controlplane.services.catalog import catalog_sync


class Command(BaseCommand):
    help = "Load controlplane/catalog/*.yaml into versioned process definitions."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = catalog_sync()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(", ".join(f"{v} {k}" for k, v in counts.items()))
