"""Triage board (htmx partials, filters, bulk, query count) and the issue page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.issues.models import Issue, IssueEvent
from mahtqa.reporting import exception_trace

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def test_inline_severity_change_returns_the_row_fragment(report, engineer_client):
    issue, _ = report(title="inline me", severity="low")
    response = engineer_client.post(f"/issues/{issue.pk}/triage/", {"severity": "critical"}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="issue-{issue.pk}"')
    assert "<html" not in html
    assert '<option value="critical" selected>' in html
    issue.refresh_from_db()
    assert issue.severity == "critical"
    assert IssueEvent.objects.filter(issue=issue, kind="severity", to_value="critical").exists()


def test_inline_assignee_and_invalid_status(report, engineer_client, engineer):
    issue, _ = report(title="assign me")
    response = engineer_client.post(f"/issues/{issue.pk}/triage/", {"assignee": "eng"}, **HX)
    assert response.status_code == 200
    issue.refresh_from_db()
    assert issue.assignee == engineer
    engineer_client.post(f"/issues/{issue.pk}/triage/", {"status": "closed"}, **HX)
    bad = engineer_client.post(f"/issues/{issue.pk}/triage/", {"status": "in_progress"}, **HX)
    assert bad.status_code == 409
    assert "cannot go from closed to in_progress" in bad.content.decode()


def test_board_full_page_and_partial(report, engineer_client):
    report(title="visible one")
    full = engineer_client.get("/issues/")
    assert full.status_code == 200
    assert b"<html" in full.content
    assert b"visible one" in full.content
    partial = engineer_client.get("/issues/", **HX)
    assert b"<html" not in partial.content
    assert partial.content.decode().lstrip().startswith('<div id="issue-board">')


def test_filters_and_overdue_marking(report, engineer_client, engineer):
    past = timezone.now() - timedelta(days=2)
    report(title="late data issue", category="data", severity="high", now=past)
    report(title="fresh training issue", category="training", severity="low")
    done, _ = report(title="resolved one", category="data")
    engineer_client.post(f"/issues/{done.pk}/triage/", {"status": "resolved"})

    def titles(query):
        html = engineer_client.get(f"/issues/?{query}", **HX).content.decode()
        return {t for t in ("late data issue", "fresh training issue", "resolved one") if t in html}

    assert titles("") == {"late data issue", "fresh training issue"}  # active by default
    assert titles("category=data") == {"late data issue"}
    assert titles("severity=low") == {"fresh training issue"}
    assert titles("status=resolved") == {"resolved one"}
    assert titles("status=all") == {"late data issue", "fresh training issue", "resolved one"}
    assert titles("overdue=1") == {"late data issue"}
    assert titles("assignee=none") == {"late data issue", "fresh training issue"}
    html = engineer_client.get("/issues/?overdue=1", **HX).content.decode()
    assert 'class="sev-high overdue"' in html
    assert "overdue by 1 d" in html


def test_sort_by_severity_then_due(report, engineer_client):
    report(title="AAA low", severity="low")
    report(title="BBB critical", severity="critical")
    report(title="CCC medium", severity="medium")
    html = engineer_client.get("/issues/?sort=severity", **HX).content.decode()
    assert html.index("BBB critical") < html.index("CCC medium") < html.index("AAA low")
    html = engineer_client.get("/issues/?sort=-severity", **HX).content.decode()
    assert html.index("AAA low") < html.index("BBB critical")


def test_bulk_action_updates_selected_issues(report, engineer_client):
    a, _ = report(title="bulk a")
    b, _ = report(title="bulk b")
    c, _ = report(title="bulk c")
    response = engineer_client.post(
        "/issues/bulk/",
        {"ids": [a.pk, b.pk], "action": "status", "value": "triaged", "return_query": "status=all"},
        **HX,
    )
    assert response.status_code == 200
    assert "2 issue(s) updated" in response.content.decode()
    statuses = dict(Issue.objects.values_list("pk", "status"))
    assert (statuses[a.pk], statuses[b.pk], statuses[c.pk]) == ("triaged", "triaged", "open")


def _board_queries(client, django_assert_max_num_queries, n):
    with django_assert_max_num_queries(n):
        response = client.get("/issues/?status=all")
    assert response.status_code == 200


def test_board_query_count_does_not_grow_with_rows(
    report, engineer_client, make_user, django_assert_max_num_queries
):
    for i in range(3):
        report(title=f"few {i}")
    _board_queries(engineer_client, django_assert_max_num_queries, 10)
    for i in range(60):  # more rows, more assignees: same number of queries
        issue, _ = report(title=f"many {i}")
        issue.assignee = make_user("engineer")
        issue.save(update_fields=["assignee"])
    _board_queries(engineer_client, django_assert_max_num_queries, 10)


def test_issue_page_renders_context_and_trace_frames(report, engineer_client):
    def inner():
        raise KeyError("landmark 9")

    try:
        inner()
    except KeyError as exc:
        traces = exception_trace(exc)
    issue, _ = report(title="key error", traces=traces, data_state={"split": "val", "case": 143},
                      reproduction_steps=["load case 143", "decode"])  # fmt: skip
    html = engineer_client.get(f"/issues/{issue.pk}/").content.decode()
    assert "<details open><summary>Environment</summary>" in html
    assert "<summary>Configuration</summary>" in html
    assert "routing_policy" in html
    assert "<summary>System metrics</summary>" in html
    assert "in <code>inner</code>" in html  # a trace frame
    assert "&quot;case&quot;: 143" in html  # data state
    assert html.index("load case 143") < html.index("decode</li>")


def test_comment_via_htmx_returns_timeline(report, engineer_client):
    issue, _ = report(title="talk")
    response = engineer_client.post(f"/issues/{issue.pk}/comment/", {"text": "on it"}, **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="issue-timeline">')
    assert "commented" in html
    assert "on it" in html
    assert "occurrence" in html  # occurrences are in the same timeline


def test_report_form_creates_issue_with_steps(engineer_client):
    response = engineer_client.post(
        "/issues/new/",
        {"title": "Docs wrong", "category": "evaluation", "severity": "low",
         "reproduction_steps": "open docs\nread SDR section\n"},
    )  # fmt: skip
    issue = Issue.objects.get()
    assert response["Location"] == f"/issues/{issue.pk}/"
    assert [s.text for s in issue.steps.all()] == ["open docs", "read SDR section"]
    assert issue.source == "web"
    assert issue.context["environment"]["python"]


def test_settings_page_changes_due_durations(admin_client_):
    from apps.issues.services import issue_settings_get

    data = {"critical_due_minutes": 30, "high_due_minutes": 240, "medium_due_minutes": 4320,
            "low_due_minutes": 20160, "notify_window_minutes": 15}  # fmt: skip
    assert admin_client_.post("/issues/settings/", data).status_code == 302
    assert issue_settings_get().critical_due_minutes == 30
    bad = admin_client_.post("/issues/settings/", {**data, "high_due_minutes": 0})
    assert bad.status_code == 200
    assert issue_settings_get().high_due_minutes == 240


def test_denied_triage_changes_nothing(report, radiologist_client):
    issue, _ = report(title="not yours to triage")
    response = radiologist_client.post(f"/issues/{issue.pk}/triage/", {"severity": "low"})
    assert response.status_code == 403
    issue.refresh_from_db()
    assert issue.severity == "high"
    assert IssueEvent.objects.filter(issue=issue, kind="severity").exists() is False
