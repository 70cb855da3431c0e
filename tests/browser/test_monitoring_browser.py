"""The incident pages and the success-metrics dashboard in a real browser (chromium)."""

from __future__ import annotations

import pytest

from apps.accounts.choices import Role
from apps.clinical.choices import ReviewPolicy
from apps.clinical.services.policy import routing_policy_current
from apps.monitoring.models import Incident
from apps.monitoring.services.health import health_run
from apps.monitoring.services.incidents import incident_trigger
from tests.browser.conftest import login
from tests.factories import PASSWORD, RoutingPolicyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_works_an_incident_from_open_to_closed(live_server, page, make_user,
                                                      artifacts_dir):  # fmt: skip
    admin = make_user(Role.ADMIN)
    RoutingPolicyFactory()
    incident, _ = incident_trigger(trigger="safety_alert", key="browser", title="MRE 3.2 mm",
                                   summary="Window of 50 reviewed cases over 2 mm.")  # fmt: skip
    login(page, live_server.url, admin.username, PASSWORD, "/monitoring/incidents/")
    page.goto(f"{live_server.url}/monitoring/incidents/")
    page.click(f"text=INC-{incident.pk} MRE 3.2 mm")
    assert page.locator("#incident-status").inner_text() == "Open"
    page.click("button[data-action=review_all]")
    page.wait_for_selector(".messages")
    assert "Routing switched to review-all" in page.locator(".messages").inner_text()
    assert routing_policy_current().review_policy == ReviewPolicy.ALL
    assert page.locator("#incident-timeline li[data-kind=action]").count() == 1
    page.click("#ack-button")
    page.wait_for_selector("text=Acknowledged by")
    assert page.locator("#incident-status").inner_text() == "Acknowledged"
    page.click("text=Mark resolved")
    page.fill("textarea[name=cause]", "A new detector at one site.")
    page.fill("textarea[name=impact]", "12 results released with 3 mm errors; recalled.")
    page.fill("textarea[name=actions_taken]", "Review-all, site onboarding.")
    page.click("text=Write record and close")
    page.wait_for_selector("dl#incident-record")
    assert page.locator("#incident-status").inner_text().startswith("Closed")
    page.screenshot(path=str(artifacts_dir / "incident-closed.png"), full_page=True)
    incident.refresh_from_db()
    assert (incident.status, incident.cause) == ("closed", "A new detector at one site.")

    # Opening one by hand from the list.
    page.goto(f"{live_server.url}/monitoring/incidents/")
    page.fill("#incident-open input[name=title]", "Drill: storage offline")
    page.click("#incident-open button[type=submit]")
    page.wait_for_selector("h1:has-text('Drill: storage offline')")
    assert Incident.objects.filter(trigger="manual", title="Drill: storage offline").count() == 1


def test_engineer_reads_the_dashboard_and_pattern_report(live_server, page, make_user,
                                                         artifacts_dir):  # fmt: skip
    engineer = make_user(Role.ENGINEER)
    health_run(source="browser")
    login(page, live_server.url, engineer.username, PASSWORD, "/monitoring/")
    page.goto(f"{live_server.url}/monitoring/")
    assert page.locator("#dashboard-tiles li").count() == 6
    assert page.locator("svg.chart").count() >= 3
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)
    page.click("text=Monthly pattern report")
    page.wait_for_selector("h1:has-text('Monthly pattern report')")
    with page.expect_download() as download:
        page.click("#patterns-csv")
    assert download.value.suggested_filename.startswith("patterns-")
    page.goto(f"{live_server.url}/monitoring/health/")
    assert page.locator("#health-results tr[data-code]").count() == 7
