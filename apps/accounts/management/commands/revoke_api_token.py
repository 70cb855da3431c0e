from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_revoke


class Command(BaseCommand):
    help = "Revoke the API token with the given prefix (first 8 characters of the key)."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix: str, **options):
        token = ApiToken.objects.filter(prefix=prefix[:8]).first()
        if token is None:
            raise CommandError(f"No token with prefix {prefix[:8]!r}.")
        api_token_revoke(token=token)
        self.stdout.write(f"Revoked token {token.prefix} ({token.name}) of {token.user.username}.")
