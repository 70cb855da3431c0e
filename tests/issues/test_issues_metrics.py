"""Metrics against fixed data, with exact expected numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.issues import metrics
from apps.issues.models import Issue
from apps.monitoring.models import ReadinessCheck

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def _issue(n, *, category="training", severity="high", hours=None, status="resolved",
           age_h=100, reopen=0, recur=0, due_h=8, late=False):  # fmt: skip
    created = NOW - timedelta(hours=age_h)
    resolved = created + timedelta(hours=hours) if hours is not None else None
    return Issue.objects.create(
        title=f"i{n}", category=category, severity=severity, status=status,
        fingerprint=f"f{n}", first_seen_at=created, last_seen_at=created, created_at=created,
        sla_started_at=created, due_at=created + timedelta(hours=due_h),
        first_resolved_at=resolved, resolved_at=resolved,
        reopen_count=reopen, recurrence_count=recur,
    )  # fmt: skip


@pytest.fixture
def fixed_data():
    # training: resolved after 1, 2, 3 and 4 hours -> median 2.5 h, p90 3.7 h
    _issue(1, hours=1)
    _issue(2, hours=2)
    _issue(3, hours=3, reopen=1, recur=1)  # reopened by a recurrence, resolved again
    _issue(4, hours=4, status="closed")
    # data: one resolved after 10 h -> median 10, p90 10
    _issue(5, category="data", hours=10, due_h=8, reopen=1)  # late (due 8 h), manual reopen
    # open ones (ages 2 h, 30 h, 100 h, 1000 h), one overdue
    _issue(6, status="open", age_h=2, due_h=8)
    _issue(7, status="triaged", age_h=30, due_h=72)
    _issue(8, status="in_progress", age_h=100, due_h=336)
    _issue(9, status="reopened", age_h=1000, due_h=1, reopen=1, recur=1)
    # checks: 9 ok and 1 failed in the last 24 h; 10 failed 3 days ago
    for i in range(10):
        ReadinessCheck.objects.create(checked_at=NOW - timedelta(hours=i + 1), source="beat",
                                      ok=i != 4)  # fmt: skip
        ReadinessCheck.objects.create(checked_at=NOW - timedelta(days=3, hours=i), source="beat",
                                      ok=False)  # fmt: skip


@pytest.mark.parametrize("portable", [False, True])
def test_resolution_time_by_category(fixed_data, portable):
    rows = {r["category"]: r for r in metrics.resolution_by_category(portable=portable)}
    assert rows["training"]["resolved"] == 4
    assert rows["training"]["median_h"] == 2.5
    assert rows["training"]["p90_h"] == 3.7
    assert (rows["data"]["median_h"], rows["data"]["p90_h"]) == (10.0, 10.0)
    assert rows["clinical"] == {
        "category": "clinical", "label": "Clinical", "resolved": 0,
        "median_h": None, "p90_h": None,
    }  # fmt: skip


def test_rates(fixed_data):
    r = metrics.rates()
    assert r["resolved"] == 5  # issues ever resolved (ids 1-5)
    assert r["never_reopened"] == 3  # 1, 2, 4
    assert r["first_time_fix_pct"] == 60.0
    assert r["recurred"] == 1  # issue 3
    assert r["recurrence_pct"] == 20.0
    # done in the current clock: 1, 2, 3, 4 (on time, due 8 h) and 5 (10 h > 8 h: late)
    assert (r["done"], r["on_time"]) == (5, 4)
    assert r["due_compliance_pct"] == 80.0
    assert r["open"] == 4
    assert r["overdue"] == 1  # issue 9 only


def test_open_by_age(fixed_data):
    ages = metrics.open_by_age(now=NOW)
    assert [a["count"] for a in ages] == [1, 1, 1, 0, 1]
    assert ages[0]["label"] == "< 1 day"


def test_uptime_from_recorded_checks(fixed_data):
    up = metrics.uptime(now=NOW)
    assert up["windows"]["24h"] == {"checks": 10, "uptime_pct": 90.0}
    assert up["windows"]["7d"] == {"checks": 20, "uptime_pct": 45.0}
    assert up["windows"]["30d"]["uptime_pct"] == 45.0
    assert sum(d["checks"] for d in up["daily"]) == 20


def test_metrics_use_a_fixed_number_of_queries(fixed_data, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        metrics.rates()
        metrics.resolution_by_category(portable=False)
        metrics.open_by_age()
        metrics.uptime()


def test_metrics_page_renders_svg_charts(fixed_data, engineer_client):
    response = engineer_client.get("/issues/metrics/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 3
    assert "60.0%" in html  # first-time fix rate
    assert "Training" in html


def test_empty_metrics_do_not_divide_by_zero(db):
    r = metrics.rates()
    assert r["first_time_fix_pct"] is None
    assert metrics.uptime()["windows"]["24h"]["uptime_pct"] is None
