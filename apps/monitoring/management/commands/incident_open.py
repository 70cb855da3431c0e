"""python manage.py incident_open --trigger T --summary TEXT: an incident for a drill.

Runs the whole response plan (automatic actions, the first on-call level, the timer), as
a real trigger would; the id is printed on the last line.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.monitoring.choices import Trigger
from apps.monitoring.services.incidents import incident_trigger

TRIGGERS = [t for t in Trigger.values if t != Trigger.MANUAL]


class Command(BaseCommand):
    help = "Open (or fold into) an incident for a trigger: a drill of the response plan."

    def add_arguments(self, parser):
        parser.add_argument("--trigger", required=True, choices=TRIGGERS)
        parser.add_argument("--summary", required=True)
        parser.add_argument("--key", default="drill", help="repeats with one key fold")
        parser.add_argument("--severity", default=None, choices=["sev1", "sev2", "sev3"])

    def handle(self, *args, trigger: str, summary: str, key: str, severity, **options):
        title = summary.strip().splitlines()[0][:200] if summary.strip() else ""
        if not title:
            raise CommandError("--summary must say what happened.")
        try:
            incident, opened = incident_trigger(
                trigger=trigger, key=key, title=title, summary=summary, severity=severity
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(("opened" if opened else "folded into") + f" INC-{incident.pk}")
        self.stdout.write(str(incident.pk))
