"""``manage.py sync_catalog``: load the YAML catalog into ProcessDefinition rows, then the
shipped GP services (operators' changes to services are kept)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from controlplane.services.catalog import catalog_sync
from controlplane.services.gpservices import gpservices_sync


class Command(BaseCommand):
    help = (
        "Load controlplane/catalog/*.yaml into versioned process definitions and "
        "controlplane/catalog/gpservices/*.yaml into GP services."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = catalog_sync()
            services = gpservices_sync()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("processes: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        self.stdout.write("GP services: " + ", ".join(f"{v} {k}" for k, v in services.items()))
