"""python manage.py verify_environment [--json] [--requirements FILE] [--broker-url URL]

Runs the environment checks of the workers' heartbeat on this machine (database and broker
included) and prints each with its fix. Exit status 1 when any check is red.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.monitoring.services.environment import environment_collect

SYMBOL = {"green": "ok", "amber": "WARN", "red": "FAIL"}


class Command(BaseCommand):
    help = (
        "Verify this machine's environment (python, torch build vs MAHTQA_DEVICE, CUDA, GPU, "
        "RAM, disk, pinned packages, model file sha256, storage, database, broker); each "
        "failed check with its fix. Exit status 1 when a check is red."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json")
        parser.add_argument(
            "--requirements", type=Path, default=None, help="default: requirements/base.txt"
        )
        parser.add_argument("--broker-url", default=None, help="default: CELERY_BROKER_URL")

    def handle(self, *args, **options):
        report = environment_collect(
            requirements=options["requirements"], broker_url=options["broker_url"]
        )
        if options["as_json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            width = max(len(c.code) for c in report.checks)
            for c in report.checks:
                self.stdout.write(f"{SYMBOL[c.status]:<4}  {c.code:<{width}}  {c.message}")
                if c.fix:
                    self.stdout.write(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
            self.stdout.write(f"overall: {report.status}")
        red = [c.code for c in report.checks if c.status == "red"]
        if red:
            raise CommandError(f"{len(red)} check(s) failed: {', '.join(red)}", returncode=1)
