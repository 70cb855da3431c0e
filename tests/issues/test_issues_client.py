"""The client module against a live server, and importable without Django."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from apps.accounts.services import api_token_create
from apps.issues.models import Issue
from mahtqa import reporting
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(api_client_user):
    return api_token_create(user=api_client_user, name="trainer")[1]


def _train_step():
    raise RuntimeError("CUDA error: an illegal memory access at 0x7f3a2b")


def test_report_exception_files_an_issue_with_context(live_server, token, monkeypatch):
    monkeypatch.setenv("MAHTQA_URL", live_server.url)
    monkeypatch.setenv("MAHTQA_TOKEN", token)
    try:
        _train_step()
    except RuntimeError:
        answer = reporting.report_exception(
            category="training", severity="critical", data_state={"epoch": 3, "batch": 17}
        )
    assert answer is not None
    assert answer["created"] is True
    issue = Issue.objects.get(pk=answer["id"])
    assert issue.category == "training"
    assert issue.severity == "critical"
    assert issue.exception_type == "RuntimeError"
    assert issue.context["environment"]["packages"]["torch"]
    assert "torch" in issue.context["environment"]
    assert issue.context["system_metrics"]["memory_total_mb"] > 0
    assert issue.context["data_state"] == {"epoch": 3, "batch": 17}
    frames = issue.context["error_traces"][-1]["frames"]
    assert frames[-1]["function"] == "_train_step"
    # The same failure again (another address) folds into the same issue.
    try:
        _train_step()
    except RuntimeError as exc:
        again = reporting.report_exception(exc, category="training", severity="critical")
    assert again["id"] == issue.pk
    assert again["occurrence_count"] == 2


def test_logging_handler_reports_errors_only(live_server, token):
    logger = logging.getLogger("test.training.script")
    handler = reporting.IssueReportHandler(url=live_server.url, token=token, category="data")
    logger.addHandler(handler)
    try:
        logger.warning("just a warning")
        try:
            {}["landmark_9"]
        except KeyError:
            logger.exception("annotation missing for case 143")
    finally:
        logger.removeHandler(handler)
    issue = Issue.objects.get()
    assert issue.title == "annotation missing for case 143"
    assert issue.category == "data"
    assert issue.exception_type == "KeyError"
    assert issue.context["data_state"]["logger"] == "test.training.script"


def test_unreachable_server_does_not_raise(caplog):
    answer = reporting.report(
        url="http://127.0.0.1:9", token="x", title="t", category="data", timeout=1
    )
    assert answer is None
    assert "issue report not sent" in caplog.text


def test_bad_token_is_reported_as_http_error_when_asked(live_server):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as exc:
        reporting.report(url=live_server.url, token="wrong", title="t", category="data",
                         raise_errors=True)  # fmt: skip
    assert exc.value.code == 401


def test_client_imports_without_django():
    code = (
        "import sys; import mahtqa.reporting as r; "
        "assert 'django' not in sys.modules, 'django imported'; "
        "assert r.scrub_text('DOE^JANE') == '[REDACTED]'; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
