"""Incidents: open, fold, cascade with timeout, acknowledge, actions, record; delivery to
a real SMTP sink and a real webhook receiver on localhost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from apps.clinical.choices import CaseEventKind, ReviewPolicy, StudyStatus
from apps.clinical.models import AuditEvent, CaseEvent, ReviewTask
from apps.clinical.services.policy import routing_policy_current
from apps.core.errors import Conflict, InvalidInput, NotFound
from apps.monitoring.choices import IncidentEventKind, IncidentStatus
from apps.monitoring.models import Incident
from apps.monitoring.services.actions import incident_action_run
from apps.monitoring.services.delivery import DeliveryFailed, incident_notification_deliver
from apps.monitoring.services.incidents import (
    ack_token_make,
    ack_token_read,
    incident_acknowledge,
    incident_open,
    incident_record_close,
    incident_status_set,
    incident_trigger,
    incidents_escalate_due,
    monitor_settings_get,
)
from apps.outbox.models import OutboxMessage
from tests.factories import PredictionFactory, RoutingPolicyFactory, StudyFactory, UserFactory
from tests.support.receivers import SmtpSink, WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def oncall(db):
    """Two on-call levels with one person each, and a policy with a webhook."""
    RoutingPolicyFactory(
        notifications={"emails": {"admin": ["oncall-admin@example.test"]}, "webhook_url": ""}
    )
    UserFactory(role="senior_radiologist", username="sen1", email="sen1@example.test")
    UserFactory(role="admin", username="adm1", email="adm1@example.test")
    config = monitor_settings_get()
    config.oncall_levels = ["senior_radiologist", "admin"]
    config.ack_timeout_minutes = 10
    config.save()
    return config


def _kinds(incident: Incident) -> list[str]:
    return list(incident.events.values_list("kind", flat=True))


def test_a_trigger_opens_one_incident_and_repeats_fold_into_it(oncall):
    now = timezone.now()
    first, opened = incident_trigger(
        trigger="safety_alert", key="clinical:mre:site-a", title="MRE 3.1 mm", now=now
    )
    again, opened_again = incident_trigger(
        trigger="safety_alert", key="clinical:mre:site-a", title="MRE 3.4 mm",
        now=now + timedelta(seconds=30),
    )  # fmt: skip
    assert (opened, opened_again) == (True, False)
    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.occurrences == 2
    assert again.severity == "sev1"
    assert _kinds(again) == [IncidentEventKind.OPENED, IncidentEventKind.FOLDED]
    # The first on-call level is queued through the outbox, once.
    assert list(again.notifications.values_list("step", "level")) == [(0, "senior_radiologist")]
    assert (
        OutboxMessage.objects.filter(dedupe_key__startswith="incident-notification:").count() == 1
    )
    assert again.escalate_at == now + timedelta(minutes=10)


def test_another_key_or_a_closed_incident_opens_a_new_one(oncall, admin_user):
    a, _ = incident_trigger(trigger="system_down", key="broker", title="Broker down")
    b, opened = incident_trigger(trigger="system_down", key="database", title="DB down")
    assert opened
    assert b.pk != a.pk
    incident_status_set(incident_id=a.pk, user=admin_user, status="resolved")
    c, opened = incident_trigger(trigger="system_down", key="broker", title="Broker down again")
    assert opened
    assert c.pk not in (a.pk, b.pk)


def test_unknown_trigger_is_refused():
    with pytest.raises(InvalidInput) as exc:
        incident_trigger(trigger="alien_attack", key="x", title="x")
    assert exc.value.code == "invalid_trigger"
    assert Incident.objects.count() == 0


def test_cascade_escalates_on_timeout_and_stops_once_acknowledged(oncall):
    t0 = timezone.now()
    incident, _ = incident_trigger(trigger="data_loss", key="model-file", title="Weights gone",
                                   now=t0)  # fmt: skip
    assert incidents_escalate_due(now=t0 + timedelta(minutes=9)) == 0
    assert incidents_escalate_due(now=t0 + timedelta(minutes=10, seconds=1)) == 1
    incident.refresh_from_db()
    assert incident.oncall_step == 1
    assert list(incident.notifications.values_list("level", flat=True)) == [
        "senior_radiologist", "admin",
    ]  # fmt: skip
    # Past the top of the chain: one more event, no more messages.
    assert incidents_escalate_due(now=t0 + timedelta(minutes=21)) == 0
    incident.refresh_from_db()
    assert incident.escalate_at is None
    assert incident.notifications.count() == 2
    assert _kinds(incident).count(IncidentEventKind.ESCALATED) == 2

    other, _ = incident_trigger(trigger="data_loss", key="dataset", title="Files changed", now=t0)
    incident_acknowledge(incident_id=other.pk, actor="sen1", now=t0 + timedelta(minutes=2))
    assert incidents_escalate_due(now=t0 + timedelta(minutes=30)) == 0
    other.refresh_from_db()
    assert (other.status, other.acknowledged_by, other.escalate_at) == (
        IncidentStatus.ACKNOWLEDGED, "sen1", None,
    )  # fmt: skip
    assert other.notifications.count() == 1
    # Acknowledging twice keeps the first acknowledgement.
    incident_acknowledge(incident_id=other.pk, actor="adm1")
    other.refresh_from_db()
    assert other.acknowledged_by == "sen1"


def test_delivery_reaches_a_real_smtp_sink_and_webhook_once(oncall):
    with SmtpSink() as sink, WebhookReceiver() as hook:
        RoutingPolicyFactory(notifications={"emails": {}, "webhook_url": hook.url})
        incident, _ = incident_trigger(trigger="security_breach", key="tokens",
                                       title="Token failures from one address")  # fmt: skip
        notification = incident.notifications.get()
        with override_settings(**sink.django_settings(), MAHTQA_BASE_URL="https://qa.example"):
            incident_notification_deliver(notification_id=notification.pk)
            incident_notification_deliver(notification_id=notification.pk)  # a retry: no-op
        assert len(sink.messages) == 1
        rcpt, message = sink.messages[0]
        assert rcpt == ["sen1@example.test"]
        assert f"INC-{incident.pk}" in message["Subject"]
        body = message.get_payload(decode=True).decode()
        token = ack_token_make(incident_id=incident.pk, step=0)
        assert f"https://qa.example/monitoring/ack/{token}/" in body
        assert len(hook.bodies) == 1
        assert hook.bodies[0]["incident"] == incident.pk
        assert hook.bodies[0]["level"] == "senior_radiologist"
        assert hook.bodies[0]["ack_url"].endswith(f"/monitoring/ack/{token}/")
    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert notification.attempts == 1
    assert IncidentEventKind.NOTIFIED in _kinds(incident)


def test_delivery_with_every_channel_down_stays_unsent_for_a_retry(oncall):
    RoutingPolicyFactory(notifications={"emails": {}, "webhook_url": "http://127.0.0.1:9/x"})
    incident, _ = incident_trigger(trigger="system_down", key="x", title="x")
    notification = incident.notifications.get()
    closed_port = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                   "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": 9, "EMAIL_TIMEOUT": 2}  # fmt: skip
    with override_settings(**closed_port), pytest.raises(DeliveryFailed):
        incident_notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.sent_at is None
    assert notification.attempts == 1
    assert "email:" in notification.error
    assert "webhook:" in notification.error


def test_review_all_action_changes_the_policy_once_and_is_audited(oncall, admin_user):
    incident, _ = incident_trigger(trigger="safety_alert", key="k", title="t")
    before = routing_policy_current().version
    outcome = incident_action_run(incident=incident, action="review_all", user=admin_user,
                                  ip="10.0.0.9")  # fmt: skip
    assert "review-all" in outcome
    policy = routing_policy_current()
    assert (policy.version, policy.review_policy) == (before + 1, ReviewPolicy.ALL)
    again = incident_action_run(incident=incident, action="review_all", user=admin_user)
    assert again.startswith("Routing was already review-all")
    assert routing_policy_current().version == before + 1
    audit = AuditEvent.objects.filter(action="incident_action")
    assert audit.count() == 2
    assert sorted(str(a.ip) for a in audit) == ["10.0.0.9", "None"]
    assert _kinds(incident).count(IncidentEventKind.ACTION) == 2


def test_safety_alert_switches_to_review_all_when_the_admin_enabled_it(oncall):
    oncall.auto_review_all_on_safety = True
    oncall.save()
    incident, _ = incident_trigger(trigger="system_down", key="a", title="not safety")
    assert routing_policy_current().review_policy == ReviewPolicy.EXCEPTIONS_ONLY
    incident, _ = incident_trigger(trigger="safety_alert", key="a", title="corrections")
    assert routing_policy_current().review_policy == ReviewPolicy.ALL
    action = incident.events.get(kind=IncidentEventKind.ACTION)
    assert action.actor == "system (automatic)"


def test_pause_release_recalls_recent_releases_into_review(oncall, admin_user):
    now = timezone.now()
    recent = StudyFactory(status=StudyStatus.RELEASED, finished_at=now - timedelta(minutes=20))
    PredictionFactory(study=recent)
    old = StudyFactory(status=StudyStatus.RELEASED, finished_at=now - timedelta(hours=5))
    PredictionFactory(study=old)
    incident, _ = incident_trigger(trigger="safety_alert", key="k", title="drift", now=now)
    outcome = incident_action_run(incident=incident, action="pause_release", user=admin_user)
    assert "1 of 1 result(s)" in outcome
    recent.refresh_from_db()
    old.refresh_from_db()
    assert (recent.status, old.status) == (StudyStatus.IN_REVIEW, StudyStatus.RELEASED)
    task = ReviewTask.objects.get(study=recent)
    assert (task.priority, task.reasons[0]["code"]) == ("urgent", "incident_recall")
    assert CaseEvent.objects.filter(study=recent, kind=CaseEventKind.RECALLED).count() == 1
    # Twice: nothing more is recalled.
    assert "0 of 0 result(s)" in incident_action_run(
        incident=incident, action="pause_release", user=admin_user
    )


def test_rollback_needs_a_person_and_an_unknown_action_is_refused(oncall):
    incident, _ = incident_trigger(trigger="safety_alert", key="k", title="t")
    with pytest.raises(InvalidInput):
        incident_action_run(incident=incident, action="format_disk", user=None)
    from apps.core.errors import Forbidden

    with pytest.raises(Forbidden):
        incident_action_run(incident=incident, action="rollback_model", user=None)


def test_status_transitions_and_the_post_incident_record(oncall, engineer):
    incident = incident_open(user=engineer, title="Drill", severity="sev3")
    assert incident.trigger == "manual"
    with pytest.raises(Conflict) as exc:
        incident_record_close(incident_id=incident.pk, user=engineer, cause="c", impact="i",
                              actions_taken="a")  # fmt: skip
    assert exc.value.code == "not_resolved"
    incident_status_set(incident_id=incident.pk, user=engineer, status="mitigated")
    incident.refresh_from_db()
    assert incident.acknowledged_by == "eng"  # acting on it acknowledges it
    with pytest.raises(Conflict):
        incident_status_set(incident_id=incident.pk, user=engineer, status="open")
    incident_status_set(incident_id=incident.pk, user=engineer, status="resolved")
    with pytest.raises(InvalidInput) as exc:
        incident_record_close(incident_id=incident.pk, user=engineer, cause=" ", impact="i",
                              actions_taken="a")  # fmt: skip
    assert exc.value.details == {"cause": "required"}
    incident_record_close(incident_id=incident.pk, user=engineer, cause="A drill.",
                          impact="None.", actions_taken="Paged.", follow_up="#12")  # fmt: skip
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert incident.closed_at is not None
    assert _kinds(incident)[-1] == IncidentEventKind.RECORD


def test_ack_tokens_are_signed():
    token = ack_token_make(incident_id=7, step=1)
    assert ack_token_read(token=token) == (7, 1)
    with pytest.raises(NotFound) as exc:
        ack_token_read(token=token[:-2] + "xx")
    assert exc.value.code == "invalid_ack_link"


def test_ack_link_page_acknowledges_on_post_only(client, oncall):
    incident, _ = incident_trigger(trigger="system_down", key="k", title="Broker down")
    url = reverse("monitoring:incident_ack_link",
                  kwargs={"token": ack_token_make(incident_id=incident.pk, step=0)})  # fmt: skip
    page = client.get(url)
    assert page.status_code == 200
    assert b"senior_radiologist" in page.content
    incident.refresh_from_db()
    assert incident.acknowledged_at is None  # a mail scanner's GET acknowledges nothing
    done = client.post(url)
    assert done.status_code == 200
    assert b"Thank you: acknowledged" in done.content
    incident.refresh_from_db()
    assert incident.acknowledged_by == "link:senior_radiologist (step 1)"
    bad = client.get(reverse("monitoring:incident_ack_link", kwargs={"token": "forged"}))
    assert bad.status_code == 404
    assert b"not valid" in bad.content


def test_incident_pages(client_for, oncall):
    incident, _ = incident_trigger(trigger="safety_alert", key="k", title="Corrections high",
                                   summary="Correction rate 0.62 over 50 cases.")  # fmt: skip
    admin = client_for("admin")
    listing = admin.get(reverse("monitoring:incidents"))
    assert listing.status_code == 200
    assert f"INC-{incident.pk} Corrections high".encode() in listing.content
    detail = admin.get(reverse("monitoring:incident", args=[incident.pk]))
    assert detail.status_code == 200
    for text in (b"Correction rate 0.62", b'data-action="review_all"', b"senior_radiologist"):
        assert text in detail.content
    radiologist = client_for("radiologist")
    page = radiologist.get(reverse("monitoring:incident", args=[incident.pk]))
    assert page.status_code == 200
    assert b'data-action="review_all"' not in page.content  # actions are for admins
    assert b"ack-button" in page.content
    refused = admin.post(reverse("monitoring:incident_record", args=[incident.pk]),
                         {"cause": "c", "impact": "i", "actions_taken": "a"})  # fmt: skip
    assert refused.status_code == 409
    assert b"not_resolved" in refused.content
    opened = admin.post(reverse("monitoring:incident_open"), {"title": "", "severity": "sev2"})
    assert opened.status_code == 302
    assert Incident.objects.count() == 1  # nothing opened without a title


def test_linking_an_issue_once_and_refusing_an_unknown_one(oncall, engineer):
    from apps.monitoring.services.incidents import incident_issue_link
    from tests.factories import IssueFactory

    incident, _ = incident_trigger(trigger="data_loss", key="k", title="t")
    issue = IssueFactory()
    incident_issue_link(incident_id=incident.pk, user=engineer, issue_id=issue.pk)
    incident_issue_link(incident_id=incident.pk, user=engineer, issue_id=issue.pk)
    assert list(incident.issues.values_list("pk", flat=True)) == [issue.pk]
    assert _kinds(incident).count(IncidentEventKind.LINKED) == 1
    with pytest.raises(InvalidInput) as exc:
        incident_issue_link(incident_id=incident.pk, user=engineer, issue_id=issue.pk + 999)
    assert exc.value.code == "unknown_issue"


def test_response_plan_settings_are_validated_and_audited(client_for, oncall):
    admin = client_for("admin")
    url = reverse("monitoring:incident_settings")
    bad = admin.post(url, {"ack_timeout_minutes": "0", "oncall_levels": "radiologist, janitor"})
    assert bad.status_code == 400
    assert b"unknown role(s): janitor" in bad.content
    assert monitor_settings_get().ack_timeout_minutes == 10  # unchanged
    good = admin.post(url, {"ack_timeout_minutes": "5", "auto_review_all": "on",
                            "oncall_levels": "senior_radiologist, admin"})  # fmt: skip
    assert good.status_code == 302
    config = monitor_settings_get()
    assert (config.ack_timeout_minutes, config.auto_review_all_on_safety) == (5.0, True)
    assert config.oncall_levels == ["senior_radiologist", "admin"]
    audit = AuditEvent.objects.get(target_type="monitor_response")
    assert audit.details["before"]["ack_timeout_minutes"] == 10


def test_an_acknowledged_incident_pages_nobody(oncall):
    incident, _ = incident_trigger(trigger="system_down", key="k", title="t")
    incident_acknowledge(incident_id=incident.pk, actor="sen1")
    notification = incident.notifications.get()
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        from django.core import mail

        incident_notification_deliver(notification_id=notification.pk)
        assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.error == "not sent: acknowledged before delivery"


def test_seed_demo_monitoring_is_idempotent(capsys):
    from django.core.management import call_command

    from apps.monitoring.models import HealthRun
    from apps.monitoring.selectors.dashboard import incident_response_times

    call_command("seed_demo_monitoring")
    call_command("seed_demo_monitoring")
    assert Incident.objects.filter(status="closed").count() == 2
    assert HealthRun.objects.count() == 2
    times = incident_response_times()
    assert times["mtta"] == {"n": 2, "mean": 6.5, "median": 6.5}
    assert "demo incidents exist" in capsys.readouterr().out


def test_repeats_fold_into_the_count_and_a_timeline_line_every_ten_minutes(oncall):
    t0 = timezone.now()
    incident, _ = incident_trigger(trigger="system_down", key="r", title="Broker down", now=t0)
    for minute in range(1, 25):  # a check failing every minute
        incident_trigger(trigger="system_down", key="r", title="Broker down",
                         now=t0 + timedelta(minutes=minute))  # fmt: skip
    incident.refresh_from_db()
    assert incident.occurrences == 25
    assert _kinds(incident).count(IncidentEventKind.FOLDED) == 2  # minutes 10 and 20


def test_bad_link_and_month_inputs_are_refused_not_500(client_for, oncall):
    engineer = client_for("engineer")
    incident, _ = incident_trigger(trigger="system_down", key="x", title="x")
    for raw in ("²", "9" * 25, "abc", ""):
        answer = engineer.post(reverse("monitoring:incident_link", args=[incident.pk]),
                               {"issue": raw})  # fmt: skip
        assert answer.status_code == 400, raw
        assert b"unknown_issue" in answer.content
    for month in ("9999-12", "1-1", "2026-13", "x"):
        page = engineer.get(reverse("monitoring:patterns"), {"month": month})
        assert page.status_code == 200, month


def test_a_failed_channel_is_retried_alone(oncall):
    with WebhookReceiver() as hook, SmtpSink() as sink:
        RoutingPolicyFactory(notifications={"emails": {}, "webhook_url": hook.url})
        incident, _ = incident_trigger(trigger="system_down", key="k", title="Storage offline")
        notification = incident.notifications.get()
        smtp_down = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                     "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": 9, "EMAIL_TIMEOUT": 2}  # fmt: skip
        with override_settings(**smtp_down), pytest.raises(DeliveryFailed):
            incident_notification_deliver(notification_id=notification.pk)
        notification.refresh_from_db()
        assert notification.webhook_sent_at is not None
        assert notification.email_sent_at is None
        assert notification.sent_at is None  # the step is not complete: the task retries
        with override_settings(**sink.django_settings()):
            incident_notification_deliver(notification_id=notification.pk)
        notification.refresh_from_db()
        assert notification.sent_at is not None
        assert notification.attempts == 2
        assert len(hook.bodies) == 1  # the webhook was not called again
        assert [rcpt for rcpt, _ in sink.messages] == [["sen1@example.test"]]
