"""Clear a sign-in lockout (django-axes) for a username and/or IP; recorded as a security event."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.accounts.services import account_unlock
from apps.core.errors import DomainError


class Command(BaseCommand):
    help = "Clear the sign-in lockout of a username and/or an IP address (audited)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="")
        parser.add_argument("--ip", default="")
        parser.add_argument("--actor", required=True, help="the admin doing it (username)")

    def handle(self, *args, username: str, ip: str, actor: str, **options):
        admin = User.objects.filter(username=actor).first()
        if admin is None or not admin.has_role("admin"):
            raise CommandError(f"--actor must name an admin user (got {actor!r}).")
        try:
            cleared = account_unlock(actor=admin, username=username, ip_address=ip)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"cleared {cleared} lockout record(s)")
