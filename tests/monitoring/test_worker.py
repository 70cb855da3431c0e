import pytest

from apps.monitoring.models import Heartbeat
from apps.monitoring.tasks import ping
from tests.conftest import wait_until


@pytest.mark.worker
def test_real_worker_runs_ping_and_writes_to_db(transactional_db, celery_worker_process):
    ping.delay(source="pytest-worker")
    assert wait_until(lambda: Heartbeat.objects.filter(source="pytest-worker").exists()), (
        celery_worker_process.output()
    )
    heartbeat = Heartbeat.objects.get(source="pytest-worker")
    assert heartbeat.hostname == celery_worker_process.hostname


@pytest.mark.worker
def test_ping_is_safe_to_run_twice(transactional_db, celery_worker_process):
    ping.delay(source="twice")
    ping.delay(source="twice")
    ping.delay(source="after")
    assert wait_until(lambda: Heartbeat.objects.filter(source="after").exists())
    assert Heartbeat.objects.filter(source="twice").count() == 1


def test_routes_and_reliability_settings():
    from mahtqa.celery import app

    conf = app.conf
    assert conf.task_acks_late
    assert conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert not conf.task_always_eager
    assert {q.name for q in conf.task_queues} == {"inference", "default", "checks"}
    router = app.amqp.router
    assert router.route({}, "apps.clinical.tasks.study_infer_task")["queue"].name == "inference"
    assert router.route({}, "apps.monitoring.tasks.ping")["queue"].name == "default"
    assert (
        router.route({}, "apps.datasets.tasks.validation_run_step_task")["queue"].name == "checks"
    )
    assert router.route({}, "apps.models.tasks.run_diagnose_task")["queue"].name == "checks"
    assert (
        router.route({}, "apps.models.tasks.inference_evaluate_task")["queue"].name == "inference"
    )
    assert (
        router.route({}, "apps.clinical.tasks.study_infer_shadow_task")["queue"].name == "inference"
    )
