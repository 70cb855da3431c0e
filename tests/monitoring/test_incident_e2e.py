"""End to end, on real processes: a stream of reviewed cases whose corrections exceed the
threshold -> the clinical monitor (beat) raises a safety alert -> an incident opens within
60 s, routing switches to review-all, the first on-call level is e-mailed (a real SMTP
sink) and the webhook called (a real HTTP receiver), the next level on timeout, and the
escalation stops once the link in the message is used."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
from django.test import Client
from django.utils import timezone

from apps.clinical.choices import ReviewOutcome, ReviewPolicy
from apps.clinical.services.policy import routing_policy_current
from apps.monitoring.choices import IncidentEventKind, IncidentStatus
from apps.monitoring.models import Incident, MonitorSettings
from tests.conftest import wait_until
from tests.factories import (
    PredictionFactory,
    ReviewFactory,
    RoutingPolicyFactory,
    StudyFactory,
    UserFactory,
)
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack

pytestmark = [pytest.mark.worker, pytest.mark.slow]

ACK_TIMEOUT_S = 8.0


@dataclass
class MonitorStack(Stack):
    extra: dict | None = None

    def env(self) -> dict[str, str]:
        return {**super().env(), **(self.extra or {})}


def _corrected_stream(n: int, *, shift_px: float, reviewer) -> None:
    """``n`` reviewed cases where the radiologist moved every landmark by ``shift_px``
    (0.1 mm spacing: 40 px = 4 mm, far over the 2 mm threshold)."""
    for _ in range(n):
        study = StudyFactory(status="reviewed")
        prediction = PredictionFactory(study=study)
        after = [{**lm, "x": lm["x"] + shift_px} for lm in prediction.landmarks]
        ReviewFactory(
            study=study, prediction=prediction, outcome=ReviewOutcome.CORRECTED, reviewer=reviewer,
            landmarks_after=after,
        )  # fmt: skip


def _ack_link(message) -> str:
    body = message.get_payload(decode=True).decode()
    return re.search(r"Acknowledge \(stops escalation\): (\S+)", body).group(1)


def test_safety_alert_opens_incident_switches_routing_notifies_escalates_and_stops(
    transactional_db,
):
    rad = UserFactory(role="radiologist", username="oncall-rad", email="rad@example.test")
    UserFactory(role="senior_radiologist", username="oncall-sen", email="sen@example.test")
    UserFactory(role="admin", username="oncall-adm", email="adm@example.test")
    MonitorSettings.objects.update_or_create(
        pk=1,
        defaults={
            "window_cases": 20, "max_mre_mm": 2.0, "auto_review_all_on_safety": True,
            "ack_timeout_minutes": ACK_TIMEOUT_S / 60,
            "oncall_levels": ["radiologist", "senior_radiologist", "admin"],
        },
    )  # fmt: skip
    redis = RedisServer()
    redis.start()
    with SmtpSink() as sink, WebhookReceiver() as hook:
        RoutingPolicyFactory(notifications={"emails": {}, "webhook_url": hook.url})
        stack = MonitorStack(redis=redis, extra={
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "DJANGO_EMAIL_HOST": "127.0.0.1", "DJANGO_EMAIL_PORT": str(sink.port),
            "MAHTQA_CLINICAL_MONITOR_SECONDS": "5", "MAHTQA_INCIDENT_ESCALATE_SECONDS": "2",
            "MAHTQA_OUTBOX_BEAT_DISPATCH_SECONDS": "1",
        })  # fmt: skip
        try:
            stack.start_worker()
            stack.start_beat()
            _corrected_stream(30, shift_px=40.0, reviewer=rad)
            stored = time.monotonic()
            assert wait_until(
                lambda: Incident.objects.filter(trigger="safety_alert").exists(), timeout=60
            ), stack.log("beat")[-3000:] + stack.log("worker")[-3000:]
            opened_after = time.monotonic() - stored
            incident = Incident.objects.get(trigger="safety_alert")
            assert opened_after < 60
            # Immediate action (enabled by the admin): routing is review-all.
            assert routing_policy_current().review_policy == ReviewPolicy.ALL
            assert incident.events.filter(kind=IncidentEventKind.ACTION).count() == 1
            # The first on-call level: e-mail through the real SMTP sink, and the webhook.
            assert wait_until(lambda: len(sink.messages) >= 1, timeout=30), stack.log("worker")
            first_rcpt, first = sink.messages[0]
            assert first_rcpt == ["rad@example.test"]
            assert f"INC-{incident.pk}" in first["Subject"]
            assert wait_until(lambda: len(hook.bodies) >= 1, timeout=10)
            assert hook.bodies[0]["level"] == "radiologist"
            # Nobody acknowledges: the senior level is told after the timeout.
            assert wait_until(lambda: len(sink.messages) >= 2, timeout=ACK_TIMEOUT_S + 30)
            second_rcpt, second = sink.messages[1]
            assert second_rcpt == ["sen@example.test"]
            # The senior acknowledges with the link in the message (no session needed).
            link = _ack_link(second)
            path = link[link.index("/monitoring/ack/") :]
            assert Client().post(path).status_code == 200
            incident.refresh_from_db()
            assert incident.status == IncidentStatus.ACKNOWLEDGED
            assert incident.acknowledged_by == "link:senior_radiologist (step 2)"
            # Escalation has stopped: no admin message after two more timeouts.
            time.sleep(2 * ACK_TIMEOUT_S + 4)
            assert [rcpt for rcpt, _ in sink.messages] == [
                ["rad@example.test"], ["sen@example.test"],
            ]  # fmt: skip
            incident.refresh_from_db()
            assert incident.notifications.count() == 2
            assert incident.escalate_at is None
            assert incident.opened_at <= timezone.now()
        finally:
            stack.stop()
            redis.kill()
