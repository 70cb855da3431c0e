"""python manage.py dataset_suspects ID (--oof PATH | --model REF | --active) [--json]

Finds annotations the model and the other annotator agree against."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.datasets.selectors import dataset_version_find, suspect_list
from apps.datasets.services import predictions_from_model, suspects_find, suspects_find_from_oof
from apps.models.selectors import model_version_active, model_version_find


class Command(BaseCommand):
    help = "Find suspect annotations of a dataset version."

    def add_arguments(self, parser):
        parser.add_argument("version")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--oof", help="out-of-fold predictions file under a dataset root")
        group.add_argument("--model", help="model version id or name@version")
        group.add_argument("--active", action="store_true", help="the active model")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(
        self,
        *args,
        version: str,
        oof: str | None,
        model: str | None,
        active: bool,
        as_json: bool,
        **options,
    ):
        found = dataset_version_find(ref=version)
        if found is None:
            raise CommandError(f"No dataset version {version!r}.")
        try:
            if oof:
                n = suspects_find_from_oof(version=found, path=oof)
            else:
                mv = model_version_active() if active else model_version_find(ref=model or "")
                if mv is None:
                    raise CommandError("No such model version.")
                n = suspects_find(
                    version=found,
                    predictions=predictions_from_model(version=found, model_version=mv),
                    source=f"model:{mv}",
                )
        except (DomainError, ValueError) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        rows = [
            {
                "id": s.pk,
                "image": s.image.key,
                "annotator": s.annotator,
                "landmark": s.landmark,
                "evidence": s.evidence,
                "status": s.status,
                "source": s.source,
            }
            for s in suspect_list(version=found)
        ]
        self.stdout.write(
            json.dumps(rows, indent=1) if as_json else f"{n} suspect(s) from this source"
        )
