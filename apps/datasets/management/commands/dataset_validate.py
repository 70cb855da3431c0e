"""python manage.py dataset_validate ID [--wait] [--json] [--consistency-mm 2.0]

Queues a validation run (a Celery job on queue ``checks``). ``--wait`` waits for it;
with ``--inline`` the run executes in this process (no worker needed). ``--json``
prints the report: summary and every finding (code, severity, image, landmark,
message). Exit code 1 when the run has critical findings."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.datasets.choices import ACTIVE_RUN_STATUSES
from apps.datasets.models import ValidationRun
from apps.datasets.presenters import run_export_rows
from apps.datasets.selectors import dataset_version_find
from apps.datasets.services import (
    validation_run_execute,
    validation_run_progress,
    validation_run_start,
)


class Command(BaseCommand):
    help = "Validate a dataset version and print its report."

    def add_arguments(self, parser):
        parser.add_argument("version", help="version id or name@N")
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--inline", action="store_true", help="run here instead of on a worker")
        parser.add_argument("--json", action="store_true", dest="as_json")
        parser.add_argument("--consistency-mm", type=float, default=2.0)
        parser.add_argument("--timeout", type=float, default=3600.0)

    def handle(
        self,
        *args,
        version: str,
        wait: bool,
        inline: bool,
        as_json: bool,
        consistency_mm: float,
        timeout: float,
        **options,
    ):
        found = dataset_version_find(ref=version)
        if found is None:
            raise CommandError(f"No dataset version {version!r}.")
        try:
            run = validation_run_start(version=found, consistency_mm=consistency_mm)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if inline:
            run = validation_run_execute(run_id=run.pk)
        elif wait:
            deadline = time.monotonic() + timeout
            while run.status in ACTIVE_RUN_STATUSES:
                if time.monotonic() > deadline:
                    raise CommandError(f"Run {run.pk} still {run.status} after {timeout:.0f} s.")
                p = validation_run_progress(run=run)
                self.stderr.write(f"\r{p['done']}/{p['total']} images", ending="")
                time.sleep(1.0)
                run = ValidationRun.objects.get(pk=run.pk)
            self.stderr.write("")
        if as_json:
            body = {
                "run": run.pk,
                "version": found.pk,
                "status": run.status,
                "summary": run.summary,
                "counts": run.counts,
                "issue": run.issue_id,
                "findings": run_export_rows(run=run),
            }
            self.stdout.write(json.dumps(body, indent=1))
        else:
            self.stdout.write(f"run {run.pk}: {run.status} {json.dumps(run.counts)}")
        if run.counts.get("critical"):
            raise SystemExit(1)
