"""``manage.py member_set <username> <tenant> --role editor``: make a user a member of a tenant."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.exceptions import HonuaError
from controlplane.models.identity import Role
from controlplane.services.auth import membership_set


class Command(BaseCommand):
    help = "Create or update a user's membership of a tenant (the user and the tenant must exist)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--role", choices=Role.values, default=Role.EDITOR.value)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            membership = membership_set(
                username=options["username"], tenant_slug=options["tenant"], role=options["role"], actor="manage.py"
            )
        except HonuaError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{membership.user} is {membership.role} of tenant {membership.tenant.slug}")
