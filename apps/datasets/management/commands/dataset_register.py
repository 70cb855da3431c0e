"""python manage.py dataset_register PATH --name NAME [--layout L] [--spacing ROW_MM,COL_MM]

PATH is a folder under a dataset root (MAHTQA_DATASET_ROOTS) or a .zip file. The
last line printed is the new dataset version id."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.datasets.choices import Layout
from apps.datasets.services import dataset_register_folder, dataset_register_zip


class Command(BaseCommand):
    help = "Register a dataset version from a folder under a dataset root or a zip."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", required=True)
        parser.add_argument("--layout", choices=Layout.values, default="")
        parser.add_argument("--spacing", default="", help="ROW_MM,COL_MM (or one number)")
        parser.add_argument("--notes", default="")

    def handle(self, *args, path: str, name: str, layout: str, spacing: str, notes: str, **options):
        fields = {"name": name, "layout": layout, "spacing": spacing, "notes": notes}
        try:
            if path.lower().endswith(".zip") and Path(path).is_file():
                with open(path, "rb") as fh:
                    version = dataset_register_zip(upload=fh, filename=Path(path).name, **fields)
            else:
                version = dataset_register_folder(path=path, **fields)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stderr.write(
            f"Registered {version.label}: {version.image_count} images, "
            f"{len(version.layout_problems)} layout problem(s), hash {version.content_hash[:12]}"
        )
        self.stdout.write(str(version.pk))
