"""python manage.py model_evaluate VERSION DATASET_VERSION [--split test] [--wait|--inline] [--json]

VERSION: a model version id or name@version; DATASET_VERSION: an id or name@N."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.datasets.selectors import dataset_version_find
from apps.models.models import EvaluationRun
from apps.models.selectors import model_version_find
from apps.models.services import evaluation as ev


class Command(BaseCommand):
    help = "Evaluate a model version on a dataset version's split."

    def add_arguments(self, parser):
        parser.add_argument("model_version")
        parser.add_argument("dataset_version")
        parser.add_argument("--split", default="test", choices=list(ev.SPLITS))
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--inline", action="store_true", help="run here instead of on a worker")
        parser.add_argument("--json", action="store_true", dest="as_json")
        parser.add_argument("--timeout", type=float, default=3600.0)

    def handle(
        self,
        *args,
        model_version,
        dataset_version,
        split,
        wait,
        inline,
        as_json,
        timeout,
        **options,
    ):
        try:
            mv = model_version_find(ref=model_version)
        except ValueError:
            mv = None
        dv = dataset_version_find(ref=dataset_version)
        if mv is None or dv is None:
            raise CommandError("No such model version or dataset version.")
        try:
            run = ev.evaluation_start(model_version=mv, dataset_version=dv, split=split)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if inline:
            run = ev.evaluation_execute(evaluation_id=run.pk)
        elif wait:
            deadline = time.monotonic() + timeout
            while run.status in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(1.0)
                run = EvaluationRun.objects.get(pk=run.pk)
        body = {
            "evaluation": run.pk,
            "status": run.status,
            "metrics": run.metrics,
            "error": run.error,
        }
        self.stdout.write(
            json.dumps(body, indent=1)
            if as_json
            else f"evaluation {run.pk}: {run.status} MRE {run.metrics.get('mre_mm')}"
        )
