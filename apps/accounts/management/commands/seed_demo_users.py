import os

from django.core.management.base import BaseCommand

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_client_create, demo_users_seed

DEMO_API_CLIENT = "demo-pacs"


class Command(BaseCommand):
    help = (
        "Create one demo user per role and a demo API client (idempotent). Passwords are "
        "random and printed, or all equal to $DEMO_PASSWORD when set."
    )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or None
        for username, role, shown in demo_users_seed(password=password):
            pw = shown if shown else "(unchanged)"
            self.stdout.write(f"  {role:<20} login {username:<12} password {pw}")
        client = User.objects.filter(username=DEMO_API_CLIENT).first()
        has_token = client and ApiToken.objects.filter(user=client, revoked_at=None).exists()
        if has_token:
            self.stdout.write(f"  {'api_client':<20} {DEMO_API_CLIENT} (token already issued)")
        else:
            _, token, raw_key = api_client_create(name=DEMO_API_CLIENT)
            self.stdout.write(f"  {'api_client':<20} {DEMO_API_CLIENT} token {raw_key}")
