"""Demo: register the shared ISBI subset and the Hamedan dev set when present (once),
and validate each in this process so a finished report is there to look at."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.datasets.models import Dataset
from apps.datasets.services import (
    dataset_register_folder,
    validation_run_execute,
    validation_run_start,
)

DEMO = (
    ("isbi2015-subset", "ISBI 2015 subset", "0.300,0.3023"),
    ("hamedan-dev", "Hamedan dev (spacing estimated)", "0.136,0.136"),
)


class Command(BaseCommand):
    help = "Register and validate the shared demo datasets (skipped when absent)."

    def handle(self, *args, **options):
        for folder, name, spacing in DEMO:
            if Dataset.objects.filter(name=name).exists():
                self.stdout.write(f"{name}: already registered")
                continue
            if not any((Path(root) / folder).is_dir() for root in settings.MAHTQA_DATASET_ROOTS):
                self.stdout.write(f"{name}: ../shared/data/{folder} not found, skipped")
                continue
            version = dataset_register_folder(
                path=folder, name=name, spacing=spacing, notes="Registered by make demo."
            )
            run = validation_run_execute(run_id=validation_run_start(version=version).pk)
            self.stdout.write(
                f"{version.label}: {version.image_count} images, validation {run.status} "
                f"{dict(run.counts)}"
            )
