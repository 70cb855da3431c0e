"""Inline triage on the issue board in a real browser (chromium via Playwright)."""

from __future__ import annotations

import pytest

from apps.accounts.choices import Role
from apps.issues.models import Issue, IssueEvent
from apps.issues.services import issue_report
from tests.browser.conftest import login
from tests.conftest import wait_until
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_engineer_changes_severity_inline_and_it_persists(live_server, page, make_user):
    engineer = make_user(Role.ENGINEER)
    issue, _ = issue_report(title="Loader drops landmark 9", category="data", severity="low")
    other, _ = issue_report(title="Unrelated issue", category="training", severity="medium")

    login(page, live_server.url, engineer.username, PASSWORD, "/issues/")
    page.goto(f"{live_server.url}/issues/")
    row = page.locator(f"#issue-{issue.pk}")
    assert row.locator("select[name=severity]").input_value() == "low"
    page.evaluate("window.__noReload = 'still here'")  # lost if the page reloads

    with page.expect_response(f"**/issues/{issue.pk}/triage/") as answer:
        row.locator("select[name=severity]").select_option("critical")
    assert answer.value.status == 200
    page.wait_for_function(
        f"document.querySelector('#issue-{issue.pk} select[name=severity]').value === 'critical'"
    )
    assert page.evaluate("window.__noReload") == "still here"  # swapped in place, no reload
    assert wait_until(lambda: Issue.objects.get(pk=issue.pk).severity == "critical", timeout=10)
    assert Issue.objects.get(pk=other.pk).severity == "medium"
    event = IssueEvent.objects.get(issue=issue, kind="severity")
    assert (event.from_value, event.to_value, event.actor_id) == ("low", "critical", engineer.pk)

    # Inline assignment too, then a fresh page load shows both.
    with page.expect_response(f"**/issues/{issue.pk}/triage/"):
        page.locator(f"#issue-{issue.pk} select[name=assignee]").select_option(engineer.username)
    page.reload()
    row = page.locator(f"#issue-{issue.pk}")
    assert row.locator("select[name=severity]").input_value() == "critical"
    assert row.locator("select[name=assignee]").input_value() == engineer.username
