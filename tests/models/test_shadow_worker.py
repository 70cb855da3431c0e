"""Shadow mode on the demo studies through a real Celery worker: ``make demo``'s seeding
(users, bundled models, v1 put in shadow beside the active v2, the demo radiographs), the
worker runs both versions on each study, and the comparison page renders the agreement
per landmark of those predictions. Nothing of the candidate is released."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.clinical.models import Prediction, ShadowPrediction, Study
from apps.clinical.services.shadow import shadow_comparison
from apps.models.models import ModelVersion
from tests.conftest import wait_until
from tests.datasets.conftest import needs_isbi

pytestmark = [needs_isbi, pytest.mark.worker, pytest.mark.slow]
DONE = ("released", "in_review", "reviewed")


@pytest.mark.django_db(transaction=True)
def test_demo_seeding_runs_v1_in_shadow_and_the_comparison_renders(
    celery_worker_process, client, engineer
):
    call_command("seed_demo_users")
    call_command("model_register_bundled")
    v1 = ModelVersion.objects.get(name="mahtnet", version="1.0.0")
    v2 = ModelVersion.objects.get(is_active=True)
    assert v2.version == "2.0.0"
    call_command("model_shadow", "mahtnet@1.0.0", "--user", "admin", "--skip-active")
    call_command("model_shadow", "mahtnet@2.0.0", "--user", "admin", "--skip-active")  # no-op
    v1.refresh_from_db()
    assert (v1.in_shadow, ModelVersion.objects.filter(in_shadow=True).count()) == (True, 1)
    call_command("seed_demo_studies")
    total = Study.objects.count()
    assert total == 7  # six ISBI radiographs (one without pixel spacing) and a phantom

    def settled() -> bool:
        if Study.objects.filter(status__in=["queued", "processing"]).exists():
            return False
        done = Study.objects.filter(status__in=DONE).count()
        return ShadowPrediction.objects.filter(model_version=v1).count() == done

    assert wait_until(settled, timeout=240), celery_worker_process.output()[-3000:]
    done = Study.objects.filter(status__in=DONE)
    assert done.count() >= 5, list(Study.objects.values_list("status", "error_code"))
    # the candidate's results are stored apart: every study's result is the active model's
    assert set(Prediction.objects.values_list("model_version_id", flat=True)) == {v2.pk}
    assert set(done.values_list("predictions__model_version_id", flat=True)) == {v2.pk}

    comparison = shadow_comparison(model_version=v1)
    assert comparison["n"] == done.count()
    lms = comparison["per_landmark"]
    assert list(lms) == ["S", "N", "A", "B", "Pog", "Me", "Gn"]
    assert all(v["mean_mm"] is not None and 0 <= v["mean_mm"] < 60 for v in lms.values()), lms
    assert sum(comparison["routing"].values()) == comparison["n"]

    client.force_login(engineer)
    page = client.get(reverse("models:shadow", args=[v1.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Agreement with the active model ({comparison['n']} studies)" in html
    assert 'id="shadow-agreement"' in html
    assert "<svg" in html
    for name, v in lms.items():
        assert f"<tr><td>{name}</td><td>{v['mean_mm']} mm</td>" in html
    worst = comparison["worst"][0]
    assert reverse("clinical:review", args=[worst["study"]]) in html  # largest disagreement
    assert "No shadow result yet." not in html
