from django.core.management.base import BaseCommand

from apps.accounts.services import api_client_create


class Command(BaseCommand):
    help = "Create (or reuse) an API client user and a new token. The raw key is the LAST line."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name: str, **options):
        user, token, raw_key = api_client_create(name=name)
        self.stdout.write(f"API client '{user.username}', token prefix {token.prefix}.")
        self.stdout.write("The key is shown once; store it now:")
        self.stdout.write(raw_key)
