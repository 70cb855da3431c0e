"""python manage.py dataset_manifest ID

Writes the version's manifest for the engine scripts and prints its path; then
``python -m mahtqa.engine.train --data version:ID`` (or ``--data PATH``) trains on
exactly that version, and the bundle records it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.datasets.selectors import dataset_version_find
from apps.datasets.services.registration import dataset_version_manifest


class Command(BaseCommand):
    help = "Write a dataset version's manifest for the engine scripts; print its path."

    def add_arguments(self, parser):
        parser.add_argument("version", help="version id or name@N")

    def handle(self, *args, version: str, **options):
        found = dataset_version_find(ref=version)
        if found is None:
            raise CommandError(f"No dataset version {version!r}.")
        self.stdout.write(str(dataset_version_manifest(version=found)))
