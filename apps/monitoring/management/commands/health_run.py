"""python manage.py health_run [--json]: run the proactive health checks now (kept)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from apps.monitoring.services.health import health_run


class Command(BaseCommand):
    help = "Run the proactive health checks, store the run, print green/amber/red with advice."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, as_json: bool, **options):
        run = health_run(source="cli")
        rows = [
            {"code": r.code, "status": r.status, "message": r.message,
             "recommendation": r.recommendation, "value": r.value}
            for r in run.results.order_by("code")
        ]  # fmt: skip
        if as_json:
            self.stdout.write(json.dumps({"run": run.pk, "status": run.status, "results": rows},
                                         indent=1))  # fmt: skip
            return
        for r in rows:
            advice = f"  -> {r['recommendation']}" if r["recommendation"] else ""
            self.stdout.write(f"{r['status']:5} {r['code']:18} {r['message']}{advice}")
        self.stdout.write(f"overall: {run.status} (run {run.pk})")
