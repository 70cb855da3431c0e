import json

from django.core.management.base import BaseCommand

from apps.clinical.services.sites import site_list


class Command(BaseCommand):
    help = "Sites (keyed, de-identified): reviewed count and the calibration in force."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        rows = site_list()
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=1))
            return
        for r in rows:
            self.stdout.write(
                f"{r['site']:22s} {r['device'][:30]:30s} reviewed {r['reviewed']:5d}  "
                f"{r['policy']}{'  review-all' if r['review_all'] else ''}"
            )
