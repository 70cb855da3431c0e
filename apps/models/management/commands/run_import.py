"""python manage.py run_import PATH [--format tensorboard|csv] [--name NAME]

PATH is a log under a configured root (MAHTQA_DATASET_ROOTS). Prints the run id last."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.models.services.imports import run_import


class Command(BaseCommand):
    help = "Import a TensorBoard or CSV training log as a run (diagnosed)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=["csv", "tensorboard"], default="")
        parser.add_argument("--name", default="")
        parser.add_argument("--dataset-version", default="")

    def handle(self, *args, path: str, format: str, name: str, dataset_version: str, **options):
        try:
            run = run_import(
                name=name or Path(path).name,
                path=path,
                format=format,
                dataset_version=dataset_version or None,
            )
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stderr.write(f"{run.metrics.count()} values, {run.findings.count()} finding(s)")
        self.stdout.write(str(run.pk))
