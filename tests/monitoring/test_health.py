"""Proactive health checks: each rating on known figures, a stored run, red triggers
opening incidents, the CLI, and readiness failures as escalation triggers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.choices import SecurityEventKind
from apps.accounts.models import SecurityEvent
from apps.clinical.choices import StudyStatus
from apps.monitoring.models import HealthResult, HealthRun, Incident
from apps.monitoring.services.health import health_run
from apps.monitoring.services.readiness import readiness_record
from mahtqa.monitoring import health
from tests.factories import ReviewTaskFactory, StudyFactory


def test_system_resources_levels():
    ok = health.system_resources(cpu_pct=20, mem_pct=40, disk_pct=50, disk_free_gb=100)
    assert (ok.status, ok.recommendation) == ("green", "")
    assert health.system_resources(cpu_pct=20, mem_pct=40, disk_pct=82,
                                   disk_free_gb=9).status == "amber"  # fmt: skip
    red = health.system_resources(cpu_pct=20, mem_pct=96, disk_pct=50, disk_free_gb=100)
    assert red.status == "red"
    assert "memory" in red.recommendation


def test_queue_depth_by_the_age_of_the_oldest_item():
    q = {"inference": {"depth": 3, "oldest_s": 100.0}}
    assert health.queue_depth(queues=q, max_age_s=600).status == "green"
    q["inference"]["oldest_s"] = 400.0
    assert health.queue_depth(queues=q, max_age_s=600).status == "amber"
    q["inference"]["oldest_s"] = 700.0
    red = health.queue_depth(queues=q, max_age_s=600)
    assert red.status == "red"
    assert "celery -A mahtqa worker" in red.recommendation
    assert red.message == "inference: 3 waiting, oldest 700 s"


def test_review_backlog_against_the_sla():
    assert health.review_backlog(open_tasks=10, overdue=0, oldest_overdue_min=0).status == "green"
    assert health.review_backlog(open_tasks=10, overdue=1, oldest_overdue_min=30).status == "amber"
    assert health.review_backlog(open_tasks=10, overdue=3, oldest_overdue_min=30).status == "red"
    assert health.review_backlog(open_tasks=100, overdue=1, oldest_overdue_min=300).status == "red"


def test_model_performance_needs_enough_cases_and_rates_corrections():
    few = health.model_performance(reviewed=5, corrected=5, rejected=0, mre_mm=9.0,
                                   max_correction_rate=0.4, max_mre_mm=2.0)  # fmt: skip
    assert few.status == "green"
    assert "too few" in few.message
    args = {"max_correction_rate": 0.4, "max_mre_mm": 2.0}
    assert health.model_performance(reviewed=100, corrected=10, rejected=2, mre_mm=0.8,
                                    **args).status == "green"  # fmt: skip
    assert health.model_performance(reviewed=100, corrected=32, rejected=0, mre_mm=0.8,
                                    **args).status == "amber"  # fmt: skip
    assert health.model_performance(reviewed=100, corrected=10, rejected=0, mre_mm=2.5,
                                    **args).status == "red"  # fmt: skip


def test_input_drift_on_ood_rate_and_intensity():
    base = {"recent_n": 100, "reference_ood_rate": 0.05, "recent_mean_intensity": 0.50,
            "reference_mean_intensity": 0.50, "reference_sd_intensity": 0.05}  # fmt: skip
    assert health.input_drift(recent_ood_rate=0.06, **base).status == "green"
    assert health.input_drift(recent_ood_rate=0.40, **base).status == "red"
    shifted = {**base, "recent_mean_intensity": 0.53}  # z = 0.03 / (0.05 / 10) = 6
    result = health.input_drift(recent_ood_rate=0.05, **shifted)
    assert result.status == "red"
    assert result.data["z_intensity"] == pytest.approx(6.0)


def test_security_status_and_stale_tokens():
    quiet = health.security_status(failed_logins=2, lockouts=0, token_failures=1,
                                   stale_tokens=0, window_h=1, stale_days=90)  # fmt: skip
    assert quiet.status == "green"
    stale = health.security_status(failed_logins=0, lockouts=0, token_failures=0,
                                   stale_tokens=2, window_h=1, stale_days=90)  # fmt: skip
    assert stale.status == "amber"
    attack = health.security_status(failed_logins=0, lockouts=12, token_failures=0,
                                    stale_tokens=0, window_h=1, stale_days=90)  # fmt: skip
    assert attack.status == "red"
    assert "security incident" in attack.recommendation


def test_storage_growth_days_left():
    first = health.storage_growth(used_bytes=1e11, free_bytes=1e11, earlier_used_bytes=None,
                                  earlier_age_h=None)  # fmt: skip
    assert first.status == "green"
    fast = health.storage_growth(used_bytes=1.2e11, free_bytes=1e11, earlier_used_bytes=1e11,
                                 earlier_age_h=24)  # fmt: skip
    assert fast.status == "red"  # 20 GB/day with 100 GB free: 5 days
    assert fast.data["days_left"] == pytest.approx(5.0)
    slow = health.storage_growth(used_bytes=1.01e11, free_bytes=1e11, earlier_used_bytes=1e11,
                                 earlier_age_h=24)  # fmt: skip
    assert slow.status == "green"  # 1 GB/day with 100 GB free: 100 days
    assert slow.data["days_left"] == pytest.approx(100.0)


@pytest.mark.django_db
def test_a_run_is_kept_and_a_red_trigger_opens_one_incident():
    now = timezone.now()
    for _ in range(12):
        SecurityEvent.objects.create(kind=SecurityEventKind.LOCKED_OUT, username="x")
    stuck = StudyFactory(status=StudyStatus.QUEUED)
    type(stuck).objects.filter(pk=stuck.pk).update(received_at=now - timedelta(minutes=20))
    overdue = ReviewTaskFactory()
    type(overdue).objects.filter(pk=overdue.pk).update(due_at=now - timedelta(hours=1))
    run = health_run(source="test", now=now)
    results = {r.code: r for r in run.results.all()}
    assert set(results) == {"system_resources", "queue_depth", "review_backlog",
                            "model_performance", "input_drift", "security_status",
                            "storage_growth"}  # fmt: skip
    assert results["security_status"].status == "red"
    assert results["queue_depth"].status == "red"
    assert results["review_backlog"].status == "red"  # 1 of 1 open tasks overdue
    assert run.status == "red"
    incidents = Incident.objects.order_by("trigger")
    assert [(i.trigger, i.fingerprint) for i in incidents] == [
        ("security_breach", "security_breach:health:security_status"),
        ("system_down", "system_down:health:queue_depth"),
    ]  # fmt: skip
    health_run(source="test", now=now + timedelta(minutes=5))  # folds, history grows
    assert Incident.objects.count() == 2
    assert HealthRun.objects.count() == 2
    assert HealthResult.objects.filter(code="storage_growth").count() == 2


@pytest.mark.django_db
def test_health_run_cli_json(capsys):
    call_command("health_run", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] in {"green", "amber", "red"}
    assert len(out["results"]) == 7
    assert {r["code"] for r in out["results"]} >= {"queue_depth", "security_status"}


@pytest.mark.django_db
def test_incident_open_cli_opens_then_folds(capsys):
    call_command("incident_open", "--trigger", "data_loss", "--summary", "Drill: weights lost")
    first = capsys.readouterr().out.strip().splitlines()
    call_command("incident_open", "--trigger", "data_loss", "--summary", "Drill again")
    second = capsys.readouterr().out.strip().splitlines()
    assert first[0].startswith("opened INC-")
    assert second[0] == f"folded into INC-{first[-1]}"
    incident = Incident.objects.get()
    assert (incident.trigger, incident.occurrences) == ("data_loss", 2)


@pytest.mark.django_db
def test_a_failed_scheduled_readiness_check_opens_an_incident():
    report = {"status": "fail", "checks": {"broker": {"status": "fail", "error": "refused"},
                                           "model": {"status": "fail", "error": "missing"},
                                           "database": {"status": "ok"}}}  # fmt: skip
    readiness_record(report=report, source="readyz")  # a probe: no incident
    assert Incident.objects.count() == 0
    readiness_record(report=report, source="beat")
    assert sorted(Incident.objects.values_list("trigger", "fingerprint")) == [
        ("data_loss", "data_loss:readiness:model"),
        ("system_down", "system_down:readiness:broker"),
    ]  # fmt: skip


@pytest.mark.django_db
def test_a_readiness_warning_is_not_an_incident():
    report = {"status": "ok", "checks": {"outbox": {"status": "warn", "warning": "outbox_backlog"},
                                         "database": {"status": "ok"}}}  # fmt: skip
    readiness_record(report=report, source="beat")
    assert Incident.objects.count() == 0
