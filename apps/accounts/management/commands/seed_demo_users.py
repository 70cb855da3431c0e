import os

from django.core.management.base import BaseCommand

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_client_create, api_token_revoke, demo_users_seed

DEMO_API_CLIENT = "demo-pacs"


class Command(BaseCommand):
    help = (
        "Create one demo user per role and a demo API client (idempotent). Passwords are "
        "random and printed, or all equal to $DEMO_PASSWORD when set."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Give existing demo users new passwords and the demo client a new token "
            "(what `make demo` does, so the printed logins always work).",
        )

    def handle(self, *args, reset: bool = False, **options):
        password = os.environ.get("DEMO_PASSWORD") or None
        for username, role, shown in demo_users_seed(password=password, reset=reset):
            pw = shown if shown else "(unchanged)"
            self.stdout.write(f"  {role:<20} login {username:<12} password {pw}")
        client = User.objects.filter(username=DEMO_API_CLIENT).first()
        if client and reset:
            for token in ApiToken.objects.filter(user=client, revoked_at=None):
                api_token_revoke(token=token)
        if client and ApiToken.objects.filter(user=client, revoked_at=None).exists():
            self.stdout.write(f"  {'api_client':<20} {DEMO_API_CLIENT} (token already issued)")
        else:
            _, token, raw_key = api_client_create(name=DEMO_API_CLIENT)
            self.stdout.write(f"  {'api_client':<20} {DEMO_API_CLIENT} token {raw_key}")
