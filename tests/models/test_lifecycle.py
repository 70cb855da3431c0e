"""Model lifecycle: a training run reported by the client over HTTP, log import,
evaluations of two versions with paired statistics, the release gate, shadow mode."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from django.test import override_settings

from apps.clinical.models import AuditEvent
from apps.core.errors import Conflict
from apps.datasets.services import dataset_register_folder
from apps.models.models import ModelVersion, TrainingRun
from apps.models.services import evaluation as ev
from apps.models.services import model_version_activate, model_version_bundled_register
from apps.models.services.imports import run_import
from apps.models.services.runs import run_diagnose
from mahtqa.reporting import training_run
from tests.datasets.conftest import ISBI_SPACING, copy_isbi, needs_isbi

pytestmark = [needs_isbi]
BUNDLED = Path(__file__).resolve().parents[2] / "mahtqa" / "engine" / "bundled"
CASES = [f"{i:03d}" for i in range(1, 7)]


@pytest.mark.django_db(transaction=True)
def test_a_client_run_arrives_live_and_is_diagnosed(live_server, api_token):
    with training_run(
        "smoke", params={"lr": 1e-3}, url=live_server.url, token=api_token, flush_every_s=0.2
    ) as run:
        for step in range(120):
            loss = 1.0 / (1 + step) if step < 80 else (float("nan") if step > 90 else 50.0 * step)
            run.log_metrics(step=step, train_loss=loss, lr=1e-3)
    stored = TrainingRun.objects.get(pk=run.id)
    assert (stored.status, stored.last_step, stored.metrics.filter(name="train_loss").count()) == (
        "finished",
        119,
        120,
    )
    assert stored.metrics.filter(finite=False).count() == 29  # NaN kept as evidence
    assert stored.environment["python"]
    diagnosed = run_diagnose(run_id=stored.pk)
    explosion = diagnosed.findings.filter(code="explosion").order_by("start_step").first()
    assert 70 <= explosion.start_step <= 91  # the blow-up starts at step 80
    assert diagnosed.issue_id is not None


@pytest.mark.django_db
def test_a_client_without_a_server_never_raises():
    with training_run("offline", url="http://127.0.0.1:9", token="x", timeout=0.5) as run:
        run.log_metrics(step=0, train_loss=1.0)
    assert run.id is None


def _val(i: int) -> float:
    return math.exp(-i / 30) + 0.02 + max(0, i - 100) * 0.01


@pytest.mark.django_db
def test_a_csv_log_imports_as_a_run_with_its_findings(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text(
        "epoch,step,train_loss,val_loss\n"
        + "".join(
            f"0,{i},{math.exp(-i / 30) + 0.01},{'' if i % 10 else _val(i)}\n" for i in range(300)
        )
    )
    with override_settings(MAHTQA_DATASET_ROOTS=[tmp_path]):
        run = run_import(name="lightning", path="metrics.csv")
    assert (run.status, run.source, run.last_step) == ("finished", "import", 299)
    assert run.metrics.filter(name="val_loss").count() == 30
    assert "val_divergence" in set(run.findings.values_list("code", flat=True))


@pytest.fixture
def evaluated(db, tmp_path, admin_user):
    root = tmp_path / "root"
    copy_isbi(root / "eval", CASES)
    with override_settings(MAHTQA_DATASET_ROOTS=[root], MAHTQA_DATASET_STORE=tmp_path / "store"):
        version = dataset_register_folder(path="eval", name="Eval", spacing=ISBI_SPACING)
    v1, _, _ = model_version_bundled_register(weights_file=BUNDLED / "mahtnet-v1.pt")
    v2, _, _ = model_version_bundled_register(weights_file=BUNDLED / "mahtnet-v2.pt")
    runs = {}
    for mv in (v1, v2):
        e = ev.evaluation_start(
            model_version=mv, dataset_version=version, split="all", user=admin_user
        )
        runs[mv.pk] = ev.evaluation_execute(evaluation_id=e.pk)
    return version, v1, v2, runs


def test_two_versions_compare_with_paired_statistics(evaluated):
    version, v1, v2, runs = evaluated
    a, b = runs[v1.pk], runs[v2.pk]
    assert (a.status, b.status, a.done, len(a.cases)) == ("done", "done", 6, 6)
    for key in ("mre_mm", "sdr", "per_landmark", "auroc_gt2mm", "tradeoff", "worst", "grades"):
        assert key in a.metrics
    stats = ev.evaluation_compare(a=a, b=b)
    assert stats["n"] == 6
    assert stats["ci95_mm"][0] <= stats["difference_mm"] <= stats["ci95_mm"][1]
    assert 0.0 <= stats["wilcoxon_p"] <= 1.0
    assert stats["difference_mm"] == pytest.approx(
        b.metrics["mre_mm"] - a.metrics["mre_mm"], abs=0.01
    )


def test_the_release_gate_refuses_a_worse_version_with_the_figures(evaluated, admin_user):
    version, v1, v2, runs = evaluated
    worse, better = (
        (v1, v2) if runs[v1.pk].metrics["mre_mm"] > runs[v2.pk].metrics["mre_mm"] else (v2, v1)
    )
    model_version_activate(model_version=better, user=admin_user)
    limit = round((runs[v1.pk].metrics["mre_mm"] + runs[v2.pk].metrics["mre_mm"]) / 2, 3)
    ev.release_gate_update(
        gate=ev.release_gate_get(),
        user=admin_user,
        enabled=True,
        reference=version,
        split="all",
        limits={"max_mre_mm": str(limit)},
    )
    with pytest.raises(Conflict) as err:
        model_version_activate(model_version=worse, user=admin_user)
    assert err.value.code == "release_gate_failed"
    assert f"(limit {limit})" in err.value.message
    assert ModelVersion.objects.get(is_active=True) == better
    assert AuditEvent.objects.filter(action="gate_change").count() == 1
    assert AuditEvent.objects.filter(action="model_activate", target_id=str(better.pk)).count() == 1


def test_shadow_results_are_stored_apart_and_compared(evaluated, admin_user):
    from apps.clinical.models import ShadowPrediction
    from apps.clinical.services.shadow import shadow_comparison
    from apps.models.services.shadow import model_version_shadow_set

    version, v1, v2, runs = evaluated
    model_version_activate(model_version=v1, user=admin_user)
    with pytest.raises(Conflict):
        model_version_shadow_set(model_version=v1, on=True, user=admin_user)
    mv = model_version_shadow_set(model_version=v2, on=True, user=admin_user, backfill=0)
    assert mv.in_shadow
    assert shadow_comparison(model_version=v2)["n"] == ShadowPrediction.objects.count() == 0


@pytest.mark.django_db
def test_finishing_registers_the_weights_and_scripts_stay_in_the_model_dir(
    engineer, api_client_user
):
    from apps.core.errors import InvalidInput
    from apps.models.services.runs import run_create, run_finish

    weights = str(BUNDLED / "mahtnet-v1.pt")
    script_run = run_create(name="script", user=api_client_user)
    with pytest.raises(InvalidInput) as err:
        run_finish(
            run=script_run,
            user=api_client_user,
            weights_path=weights,
            model_name="s",
            model_version="1",
        )
    assert err.value.code == "weights_outside_model_dir"
    run = run_create(name="engineer", user=engineer)
    done = run_finish(
        run=run, user=engineer, weights_path=weights, model_name="smoke", model_version="0.1"
    )
    assert (done.status, done.model_version.name, done.model_version.registered_by) == (
        "finished",
        "smoke",
        engineer,
    )
    assert (
        run_finish(run=done, user=engineer).model_version_id == done.model_version_id
    )  # idempotent


@pytest.mark.django_db
def test_the_runs_page_overlays_the_ticked_runs(client, engineer):
    from django.urls import reverse

    from apps.models.services.runs import run_create, run_log_metrics

    runs = [run_create(name=f"overlay {i}", user=engineer) for i in range(3)]
    for r in runs:
        run_log_metrics(
            run=r, rows=[{"step": s, "train_loss": 1.0 / (s + 1)} for s in range(5)], diagnose=False
        )
    client.force_login(engineer)
    page = client.get(
        reverse("models:run_compare"), {"pick": [runs[0].pk, runs[2].pk], "metric": "train_loss"}
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert f"{runs[0].pk} overlay 0" in html
    assert f"{runs[2].pk} overlay 2" in html
    assert "overlay 1" not in html
