"""Demo monitoring for `make demo`: one health run and two past incidents worked through
the real services (a system-down drill and a safety alert, acknowledged, resolved and
closed with their records), so the dashboard's MTTA/MTTR and the pages have content.

Idempotent: does nothing when a demo incident exists. Nothing is paged: past incidents
are acknowledged before the cascade's worker would deliver (the demo mails to the console).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.monitoring.models import Incident
from apps.monitoring.services.health import health_run
from apps.monitoring.services.incidents import (
    incident_acknowledge,
    incident_record_close,
    incident_status_set,
    incident_trigger,
)

DEMO = [
    # (trigger, key, title, opened days ago, ack after min, resolved after min, record)
    ("system_down", "demo:broker", "Demo: broker unreachable for 6 minutes", 12, 4, 35,
     ("Redis restarted by a host update without AOF.", "Intake answered 503 for 6 minutes; "
      "no study lost (outbox).", "Enabled AOF; restart policy documented.")),
    ("safety_alert", "demo:site", "Demo: corrections rising at a new site", 5, 9, 240,
     ("A new detector at one site (image statistics drifted).", "14 results reviewed again "
      "after the recall; none had been acted on.", "Site onboarded with its own calibration.")),
]  # fmt: skip


class Command(BaseCommand):
    help = "Seed the demo's monitoring: a health run and two closed incidents."

    def handle(self, *args, **options):
        health_run(source="demo")
        if Incident.objects.filter(fingerprint__contains=":demo:").exists():
            self.stdout.write("demo incidents exist")
            return
        admin = get_user_model().objects.filter(is_superuser=True).first()
        now = timezone.now()
        for trigger, key, title, days, ack, resolved, (cause, impact, actions) in DEMO:
            opened = now - timedelta(days=days)
            incident, _ = incident_trigger(trigger=trigger, key=key, title=title, now=opened)
            incident_acknowledge(incident_id=incident.pk, actor="demo-oncall",
                                 now=opened + timedelta(minutes=ack))  # fmt: skip
            incident_status_set(incident_id=incident.pk, user=admin, status="resolved",
                                now=opened + timedelta(minutes=resolved))  # fmt: skip
            incident_record_close(incident_id=incident.pk, user=admin, cause=cause,
                                  impact=impact, actions_taken=actions,
                                  now=opened + timedelta(minutes=resolved + 60))  # fmt: skip
        self.stdout.write(f"seeded {len(DEMO)} demo incidents and a health run")
