"""Through a real Celery worker (queue ``checks``): a validation run in chunks and a
data-loading profile, both enqueued through the outbox."""

from __future__ import annotations

from functools import partial

import pytest
from django.test import override_settings

from apps.datasets.models import ProfileRun, ValidationRun
from apps.datasets.services import dataset_register_folder, profile_run_start, validation_run_start
from tests.conftest import wait_until
from tests.datasets.conftest import ISBI_SPACING, defect_truncate, needs_isbi

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), needs_isbi]

CASES = [f"{i:03d}" for i in range(1, 7)]


def test_a_worker_validates_a_version_and_profiles_its_loading(make_isbi, celery_worker_process):
    folder = make_isbi("worker", CASES, [partial(defect_truncate, case="003")])
    version = dataset_register_folder(path=folder, name="Worker", spacing=ISBI_SPACING)
    with override_settings(MAHTQA_DATASET_CHUNK=2):
        run = validation_run_start(version=version)

    def finished() -> bool:  # done, and the critical finding filed (right after the commit)
        row = ValidationRun.objects.get(pk=run.pk)
        return row.status == "done" and row.issue_id is not None

    assert wait_until(finished, timeout=90), celery_worker_process.output()[-3000:]
    run.refresh_from_db()
    assert (run.done, run.summary["images"], run.summary["readable"]) == (6, 6, 5)
    assert run.findings.filter(code="image_truncated", image__key="003").count() == 1
    assert run.issue_id is not None

    profile = profile_run_start(version=version, batch_sizes=[1, 2], num_workers=[0, 1], batches=2)

    def profiled() -> bool:
        return ProfileRun.objects.get(pk=profile.pk).status in ("done", "failed")

    assert wait_until(profiled, timeout=180), celery_worker_process.output()[-3000:]
    profile.refresh_from_db()
    assert profile.status == "done", profile.error
    report = profile.report
    assert len(report["loaders"]) == 4
    assert {(x["num_workers"], x["batch_size"]) for x in report["loaders"]} == {
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
    }
    assert report["bottleneck"] in ("decode", "preprocess", "augment", "to_tensor")
    assert (profile.done, profile.total) == (5, 5)
