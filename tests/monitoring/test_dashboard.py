"""The success-metrics dashboard, the monthly pattern report (page and CSV) and the
health history page, on crafted rows with known answers."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.clinical.choices import TaskStatus
from apps.clinical.models import ReviewTask
from apps.monitoring.selectors.dashboard import (
    incident_response_times,
    monthly_pattern_report,
    review_sla_compliance,
)
from apps.monitoring.services.health import health_run
from tests.factories import IncidentFactory, IssueFactory, OccurrenceFactory, ReviewTaskFactory

pytestmark = pytest.mark.django_db


def _closed(*, minutes_late: float, priority: str = "normal", now: datetime) -> ReviewTask:
    task = ReviewTaskFactory(priority=priority)
    ReviewTask.objects.filter(pk=task.pk).update(
        status=TaskStatus.DONE, due_at=now - timedelta(hours=1),
        closed_at=now - timedelta(hours=1) + timedelta(minutes=minutes_late),
    )  # fmt: skip
    return task


def test_review_sla_compliance_counts_on_time_closures():
    now = timezone.now()
    for late in (-30, -5, 10):
        _closed(minutes_late=late, now=now)
    _closed(minutes_late=-1, priority="urgent", now=now)
    sla = review_sla_compliance(now=now)
    assert (sla["done"], sla["on_time"], sla["pct"]) == (4, 3, 75.0)
    assert sla["by_priority"]["normal"] == {"done": 3, "on_time": 2, "pct": 66.7}
    assert sla["by_priority"]["urgent"]["pct"] == 100.0


def test_incident_mtta_and_mttr():
    t0 = timezone.now() - timedelta(days=1)
    IncidentFactory(opened_at=t0, acknowledged_at=t0 + timedelta(minutes=4),
                    resolved_at=t0 + timedelta(minutes=60), status="resolved")  # fmt: skip
    IncidentFactory(opened_at=t0, acknowledged_at=t0 + timedelta(minutes=10),
                    resolved_at=t0 + timedelta(minutes=120), status="resolved")  # fmt: skip
    IncidentFactory(opened_at=t0, trigger="safety_alert")  # open, unacknowledged
    times = incident_response_times()
    assert times["opened"] == 3
    assert times["mtta"] == {"n": 2, "mean": 7.0, "median": 7.0}
    assert times["mttr"] == {"n": 2, "mean": 90.0, "median": 90.0}
    assert times["by_trigger"]["safety_alert"]["mtta"]["n"] == 0


def test_monthly_pattern_report():
    tz = timezone.get_current_timezone()
    june = datetime(2026, 6, 10, tzinfo=tz)
    loud = IssueFactory(title="CUDA OOM", category="training", created_at=june, occurrences=0)
    quiet = IssueFactory(title="Slow loader", category="data", created_at=june, occurrences=0)
    for i in range(5):
        OccurrenceFactory(issue=loud, occurred_at=june + timedelta(hours=i))
    OccurrenceFactory(issue=quiet, occurred_at=june)
    OccurrenceFactory(issue=quiet, occurred_at=datetime(2026, 7, 2, tzinfo=tz))  # next month
    IssueFactory(category="data", created_at=datetime(2026, 5, 3, tzinfo=tz))
    IssueFactory(category="data", created_at=datetime(2026, 5, 4, tzinfo=tz))
    slow = IssueFactory(title="Took long", category="clinical", created_at=june)
    fast = IssueFactory(title="Quick", category="clinical", created_at=june)
    type(slow).objects.filter(pk=slow.pk).update(first_resolved_at=june + timedelta(hours=50))
    type(fast).objects.filter(pk=fast.pk).update(first_resolved_at=june + timedelta(hours=2))

    report = monthly_pattern_report(month=date(2026, 6, 1))
    recurring = [(r["issue"], r["occurrences"]) for r in report["recurring"]]
    assert recurring[:2] == [(loud.pk, 5), (quiet.pk, 1)]
    by_cat = {r["category"]: r for r in report["categories"]}
    assert (by_cat["training"]["this_month"], by_cat["training"]["previous"]) == (1, 0)
    assert (by_cat["data"]["this_month"], by_cat["data"]["previous"]) == (1, 2)
    assert report["categories"][0]["change"] >= report["categories"][-1]["change"]
    assert [(r["id"], r["hours"]) for r in report["slowest"]] == [(slow.pk, 50.0), (fast.pk, 2.0)]


def test_pages_and_csv(client_for):
    engineer = client_for("engineer")
    IncidentFactory()
    health_run(source="test")
    page = engineer.get(reverse("monitoring:dashboard"))
    assert page.status_code == 200
    for marker in (b'id="d-ftf"', b'id="d-sla"', b'id="d-mtta"', b"<svg"):
        assert marker in page.content
    report = engineer.get(reverse("monitoring:patterns"), {"month": "2026-06"})
    assert report.status_code == 200
    assert b"June 2026" in report.content
    exported = engineer.get(reverse("monitoring:patterns"), {"month": "2026-06", "format": "csv"})
    assert exported.status_code == 200
    assert exported["Content-Disposition"] == 'attachment; filename="patterns-2026-06.csv"'
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0] == ["section", "key", "title", "category", "value", "previous"]
    assert {r[0] for r in rows[1:]} == {"category"}  # no issues: only the category rows
    bad_month = engineer.get(reverse("monitoring:patterns"), {"month": "June"})
    assert bad_month.status_code == 200  # falls back to this month, says which
    assert timezone.localdate().strftime("%B %Y").encode() in bad_month.content
    health = engineer.get(reverse("monitoring:health"))
    assert health.status_code == 200
    assert b'data-code="queue_depth"' in health.content
