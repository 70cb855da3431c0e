"""A real worker consumes the environment report on each queue (as beat sends it) and
stores one report per queue; the workers page lists them."""

import pytest
from django.conf import settings

from apps.monitoring.models import WorkerEnvironment
from apps.monitoring.tasks import environment_report_task
from tests.conftest import wait_until

TASK = "apps.monitoring.tasks.environment_report_task"


@pytest.mark.worker
def test_a_real_worker_reports_its_environment_on_every_queue(
    transactional_db, celery_worker_process, engineer_client
):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == TASK]
    for entry in entries:  # exactly what beat sends: the queue and its routing key
        environment_report_task.apply_async(kwargs=entry["kwargs"], **entry["options"])
    mine = WorkerEnvironment.objects.filter(hostname=celery_worker_process.hostname)
    assert wait_until(lambda: mine.count() == 3, timeout=60), celery_worker_process.output()
    assert sorted(mine.values_list("queue", flat=True)) == ["checks", "default", "inference"]
    for row in mine:
        codes = {c["code"] for c in row.checks}
        assert {"python", "torch", "device", "packages", "model", "database", "broker"} <= codes
        by_code = {c["code"]: c for c in row.checks}
        assert by_code["database"]["status"] == "green"  # the worker reached the test database
        assert by_code["broker"]["status"] == "green"
        assert by_code["model"]["status"] == "red"  # no active model in this test database
        assert "model_register_bundled" in by_code["model"]["fix"]
        assert row.facts["python"]
        assert row.facts["torch"]
    page = engineer_client.get("/monitoring/workers/")
    assert page.status_code == 200
    assert page.content.decode().count(celery_worker_process.hostname) >= 6  # table + sections
