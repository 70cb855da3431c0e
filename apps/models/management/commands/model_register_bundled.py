from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

import mahtqa
from apps.core.errors import DomainError
from apps.models.services import model_version_bundled_register

BUNDLED_DIR = Path(mahtqa.__file__).resolve().parent / "engine" / "bundled"


class Command(BaseCommand):
    help = (
        "Register the bundled models (mahtqa/engine/bundled/*.pt, manifest .json beside each), "
        "newest first, and activate the newest when no model is active (an install that "
        "already has an active model keeps it until an admin activates another). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=BUNDLED_DIR)

    def handle(self, *args, **options):
        directory: Path = options["dir"]
        weights = sorted(directory.glob("*.pt"), reverse=True)  # mahtnet-v2 before -v1
        if not weights:
            self.stdout.write(f"No bundled weights in {directory} yet: nothing registered.")
            return
        for weights_file in weights:
            try:
                mv, created, activated = model_version_bundled_register(
                    weights_file=weights_file.resolve()
                )
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"{'Registered' if created else 'Already registered'}: {mv}.")
            if activated:
                self.stdout.write(f"Activated: {mv}.")
