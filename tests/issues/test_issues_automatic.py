"""Failed Celery tasks and failed checks of other apps file (or fold into) issues."""

from __future__ import annotations

import pytest
from celery.signals import task_failure

from apps.issues.models import Issue
from apps.issues.signals import check_failed
from apps.monitoring.models import ReadinessCheck
from apps.monitoring.services import readiness_record
from tests.conftest import wait_until


class _FakeTask:
    name = "apps.clinical.tasks.study_infer_task"


def _fail_task(msg: str):
    try:
        raise MemoryError(msg)
    except MemoryError as exc:
        task_failure.send(sender=_FakeTask(), task_id="abc", exception=exc, args=("PHI?",),
                          kwargs={}, traceback=exc.__traceback__, einfo=None)  # fmt: skip


@pytest.mark.django_db
def test_task_failure_signal_files_then_folds():
    _fail_task("out of memory allocating 512 MiB")
    _fail_task("out of memory allocating 1024 MiB")
    issue = Issue.objects.get()
    assert issue.occurrence_count == 2
    assert issue.source == "celery"
    assert issue.category == "deployment"
    assert issue.title == "Task apps.clinical.tasks.study_infer_task failed: MemoryError"
    assert issue.context["data_state"] == {"task": _FakeTask.name, "task_id": "abc"}
    assert "PHI?" not in str(issue.context)  # task arguments are never stored


@pytest.mark.django_db
def test_check_failed_signal_files_and_folds():
    for _ in range(3):
        check_failed.send(sender="datasets", app="datasets", check="integrity",
                          error="sha256_mismatch", category="data")  # fmt: skip
    issue = Issue.objects.get()
    assert issue.occurrence_count == 3
    assert issue.category == "data"
    assert issue.source == "check"


@pytest.mark.django_db
def test_readiness_is_recorded_and_failures_become_issues():
    readiness_record(report={"status": "ok", "checks": {"database": {"status": "ok"}}},
                     source="beat")  # fmt: skip
    broker = {"status": "fail", "error": "ConnectionError"}
    fail = {"status": "fail", "checks": {"database": {"status": "ok"}, "broker": broker}}
    readiness_record(report=fail, source="beat")
    readiness_record(report=fail, source="readyz")
    assert list(ReadinessCheck.objects.order_by("checked_at").values_list("ok", flat=True)) == [
        True, False, False,
    ]  # fmt: skip
    issue = Issue.objects.get()
    assert issue.title == "Check monitoring.readiness.broker failed: ConnectionError"
    assert issue.occurrence_count == 2


@pytest.mark.django_db
def test_readyz_call_records_a_row(client):
    client.get("/readyz")
    assert ReadinessCheck.objects.filter(source="readyz").count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_failed_task_files_an_issue(celery_worker_process):
    from mahtqa.celery import app

    app.send_task("apps.monitoring.tasks.ping", kwargs={"bogus": 1})
    assert wait_until(lambda: Issue.objects.filter(source="celery").exists(), timeout=60), (
        celery_worker_process.output()[-3000:]
    )
    issue = Issue.objects.get(source="celery")
    assert issue.title == "Task apps.monitoring.tasks.ping failed: TypeError"
