"""scripts/train_bundled.sh end to end: a short real training of both engine networks on a
registered dataset version, reported over HTTP to a live server with a real API token;
the run arrives live, with its environment and dataset version, and ends as a registered
model version linked to the run and the dataset version."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from apps.datasets.services import dataset_register_folder
from apps.models.models import ModelVersion, TrainingRun
from tests.datasets.conftest import ISBI_SPACING, copy_isbi, needs_isbi

pytestmark = [needs_isbi, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
CASES = [f"{i:03d}" for i in range(1, 7)]
COARSE_STEPS, FINE_STEPS = 12, 8


def _wait(ok, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_train_bundled_reports_a_live_run_that_ends_as_a_model_version(
    live_server, api_token, client, engineer, settings, tmp_path
):
    root, store, models = tmp_path / "root", tmp_path / "store", tmp_path / "models"
    models.mkdir()
    copy_isbi(root / "train", CASES)
    settings.MAHTQA_DATASET_ROOTS, settings.MAHTQA_DATASET_STORE = [root], store
    settings.MAHTQA_MODEL_DIR = models  # the script's token may register only under here
    version = dataset_register_folder(path="train", name="E2E", spacing=ISBI_SPACING)
    bundle = models / "mahtnet-e2e.pt"
    env = {
        **os.environ,
        "PY": sys.executable,
        "VERSION": "v1",
        "DATA": f"version:{version.pk}",
        "MAHTQA_DATASET_STORE": str(store),
        "OUT": str(tmp_path / "out"),
        "BUNDLE": str(bundle),
        "COARSE_STEPS": str(COARSE_STEPS),
        "FINE_STEPS": str(FINE_STEPS),
        "MAX_CASES": str(len(CASES)),
        "SIZE": "small",
        "GRAD_EVERY": "2",
        "MAHTQA_URL": live_server.url,
        "MAHTQA_TOKEN": api_token,
        "MAHTQA_RUN_FLUSH_S": "0.3",
        "RUN_NAME": "e2e smoke",
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "train_bundled.sh")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        live = _wait(
            lambda: TrainingRun.objects.filter(
                name="e2e smoke", status="running", metrics__name="train_loss"
            ).exists(),
            timeout=90,
        )
        run = TrainingRun.objects.get(name="e2e smoke")
        client.force_login(engineer)
        during = client.get(reverse("models:run", args=[run.pk])).content.decode()
        output, _ = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, output[-3000:]
    assert live, "no metric arrived while the run was running"
    assert 'hx-trigger="every 2s"' in during  # the page polls while the run goes on
    run.refresh_from_db()
    assert (run.status, run.source, run.error) == ("finished", "client", "")
    assert run.dataset_version == version
    assert run.params["coarse_steps"] == COARSE_STEPS
    assert run.params["data"] == f"version:{version.pk}"
    assert run.environment["python"]
    assert run.environment["packages"]["torch"]
    assert run.environment["torch"]["num_threads"] >= 1

    def steps(name: str) -> list[int]:
        return list(run.metrics.filter(name=name).order_by("step").values_list("step", flat=True))

    assert steps("train_loss") == steps("lr") == list(range(COARSE_STEPS))
    assert steps("fine/train_loss") == steps("fine/lr") == list(range(FINE_STEPS))
    assert steps("grad_norm") == list(range(0, COARSE_STEPS, 2))
    assert steps("fine/grad_norm") == list(range(0, FINE_STEPS, 2))
    assert steps("val_loss") == steps("val_mre_mm") == [COARSE_STEPS - 1]
    mre = run.metrics.get(name="val_mre_mm").value
    assert mre == pytest.approx(0.3 * run.metrics.get(name="val_mre").value)
    assert run.metrics.filter(finite=False).count() == 0
    assert run.last_step == COARSE_STEPS - 1

    mv = run.model_version
    assert mv is not None, output[-2000:]
    assert (mv.name, mv.version) == ("mahtnet", f"1.0.0+run{run.pk}")
    assert mv.dataset_version == version
    assert mv.registered_by is None  # a script's token: registered by the system for the run
    assert Path(mv.weights_path) == bundle.resolve()
    assert mv.manifest["training"]["steps"] == {"coarse": COARSE_STEPS, "fine": FINE_STEPS}
    assert ModelVersion.objects.filter(is_active=True).count() == 0  # never activated by a run

    page = client.get(reverse("models:run", args=[run.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    for title in ("Loss", "Learning rate", "Gradient norm", "MRE (mm)", "fine/train_loss"):
        assert f"<figcaption>{title}</figcaption>" in html
    assert html.count("<svg") >= 5
    assert 'id="run-dataset"' in html
    assert "registered as <a href=" in html
    assert 'hx-trigger="every 2s"' not in html  # finished: no more polling
    assert elapsed < 90, elapsed


@pytest.mark.django_db(transaction=True)
def test_refused_weights_still_close_the_run_with_the_reason(
    live_server, api_token, client, engineer, settings, tmp_path
):
    from mahtqa.reporting import training_run

    settings.MAHTQA_MODEL_DIR = tmp_path / "models"
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes(b"weights")
    with training_run("refused", url=live_server.url, token=api_token, flush_every_s=0.2) as run:
        run.log_metrics(step=0, train_loss=1.0)
        run.set_artifact(weights_path=str(outside), model_version="9")
    stored = TrainingRun.objects.get(pk=run.id)
    assert (stored.status, stored.model_version_id) == ("finished", None)
    assert stored.error == "weights not registered (weights_outside_model_dir)"
    assert ModelVersion.objects.count() == 0
    client.force_login(engineer)
    html = client.get(reverse("models:run", args=[run.id])).content.decode()
    assert '<p class="error" id="run-error">weights not registered' in html


@pytest.mark.django_db(transaction=True)
def test_a_training_that_fails_marks_the_run_failed(live_server, api_token, settings, tmp_path):
    root, store = tmp_path / "root", tmp_path / "store"
    copy_isbi(root / "train", CASES[:2])
    settings.MAHTQA_DATASET_ROOTS, settings.MAHTQA_DATASET_STORE = [root], store
    version = dataset_register_folder(path="train", name="Gone", spacing=ISBI_SPACING)
    (store / "manifests" / f"{version.pk}.json").unlink()  # the engine cannot read the data
    env = {
        **os.environ,
        "PY": sys.executable,
        "VERSION": "v1",
        "DATA": f"version:{version.pk}",
        "MAHTQA_DATASET_STORE": str(store),
        "OUT": str(tmp_path / "out"),
        "BUNDLE": str(tmp_path / "never.pt"),
        "MAHTQA_URL": live_server.url,
        "MAHTQA_TOKEN": api_token,
        "RUN_NAME": "doomed",
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "train_bundled.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    run = TrainingRun.objects.get(name="doomed")
    assert (run.status, run.dataset_version, run.model_version) == ("failed", version, None)
    assert run.error == "scripts/train_bundled.sh stopped (exit 2)"
    assert run.finished_at is not None


@pytest.mark.django_db
def test_each_network_of_a_run_is_diagnosed_on_its_own_curves(client, engineer):
    from apps.models.services.runs import run_create, run_diagnose, run_log_metrics

    run = run_create(name="two networks", user=engineer)
    rows = []
    for step in range(120):  # coarse: healthy; fine: blows up at step 80
        fine = 1.0 / (1 + step) if step < 80 else 50.0 * step
        rows.append({"step": step, "train_loss": 1.0 / (1 + step), "fine/train_loss": fine})
    run_log_metrics(run=run, rows=rows, diagnose=False)
    diagnosed = run_diagnose(run_id=run.pk)
    explosions = list(diagnosed.findings.filter(code="explosion"))
    assert explosions
    assert all(f.statistic.startswith("[fine] ") for f in explosions)
    assert all(f.message.startswith("[fine] Steps ") for f in explosions)
    assert 70 <= min(f.start_step for f in explosions) <= 81
    client.force_login(engineer)
    html = client.get(reverse("models:run", args=[run.pk])).content.decode()
    loss, fine = html.split("<figcaption>Loss</figcaption>")[1].split("<figcaption>")[0:2]
    assert 'class="band"' not in loss  # the coarse curve is not shaded with fine's finding
    assert fine.startswith("fine/train_loss</figcaption>")
    assert 'class="band"' in fine
