"""python manage.py run_diagnose ID [--json]: the ConvergenceAnalyzer's findings."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.models.models import TrainingRun
from apps.models.selectors import run_finding_rows
from apps.models.services.runs import run_diagnose


class Command(BaseCommand):
    help = "Diagnose a training run's history (plateau, oscillation, explosion, ...)."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, run_id: int, as_json: bool, **options):
        if not TrainingRun.objects.filter(pk=run_id).exists():
            raise CommandError(f"No training run {run_id}.")
        run = run_diagnose(run_id=run_id)
        rows = run_finding_rows(run=run)
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "run": run.pk,
                        "early_stopping_step": run.early_stopping_step,
                        "findings": rows,
                    },
                    indent=1,
                )
            )
        else:
            for r in rows:
                self.stdout.write(
                    f"{r['code']} steps {r['start_step']}-{r['end_step']}: {r['message']}"
                )
