"""Similar resolved issues on the report form, as you type, in a real browser."""

from __future__ import annotations

import pytest

from apps.accounts.choices import Role
from tests.browser.conftest import login
from tests.factories import PASSWORD
from tests.issues.test_similar import OOM, OOM_NOTE, _resolved

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_form_shows_similar_issues_while_typing_in_a_browser(live_server, page, make_user):
    engineer = make_user(Role.ENGINEER, username="eng-browser")
    oom = _resolved(engineer, OOM, OOM_NOTE)
    login(page, live_server.url, engineer.username, PASSWORD, "/issues/new/")
    page.goto(f"{live_server.url}/issues/new/")
    with page.expect_response("**/issues/similar/?*") as answer:
        page.locator("#id_title").press_sequentially("GPU out of memory while training")
    assert answer.value.status == 200
    link = page.locator(f'#similar-issues a[href="/issues/{oom.pk}/"]')
    link.wait_for()
    assert "use --batch 4 --accumulate 4." in page.locator("#similar-issues").inner_text()
    page.select_option("#id_category", "training")
    page.locator("form.card button[type=submit]").click()
    page.wait_for_url("**/issues/*/")
    assert page.locator(f'#similar-issues a[href="/issues/{oom.pk}/"]').count() == 1
