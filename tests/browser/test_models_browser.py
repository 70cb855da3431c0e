"""The release gate in a real browser: an admin tries to activate a deliberately worse
version (the v2 bundle with noise on its fine network) on the registry page and is
refused, with the failed gate and its figures; the active version stays."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from django.test import override_settings

from apps.accounts.choices import Role
from apps.clinical.models import AuditEvent
from apps.datasets.services import dataset_register_folder
from apps.models.models import ModelVersion
from apps.models.services import evaluation as ev
from apps.models.services import model_version_activate, model_version_bundled_register
from tests.browser.conftest import login
from tests.datasets.conftest import ISBI_SPACING, copy_isbi, needs_isbi
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_isbi]

BUNDLED = Path(__file__).resolve().parents[2] / "mahtqa" / "engine" / "bundled"
CASES = [f"{i:03d}" for i in range(1, 6)]
REGRESSION_LIMIT = 0.5  # mm of MRE the candidate may lose against the active version


def _degraded_bundle(dest: Path) -> Path:
    """v2's weights with Gaussian noise (sd 0.5 x each tensor's sd) on the fine network."""
    blob = torch.load(BUNDLED / "mahtnet-v2.pt", map_location="cpu", weights_only=False)
    gen = torch.Generator().manual_seed(7)
    for name, tensor in blob["fine"]["state"].items():
        if tensor.is_floating_point() and tensor.numel() > 1 and "weight" in name:
            noise = torch.randn(tensor.shape, generator=gen) * tensor.std() * 0.5
            blob["fine"]["state"][name] = tensor + noise
    manifest = json.loads((BUNDLED / "mahtnet-v2.json").read_text())
    manifest["version"] = blob["manifest"]["version"] = "2.0.1-degraded"
    path = dest / "mahtnet-degraded.pt"
    torch.save(blob, path)
    path.with_suffix(".json").write_text(json.dumps(manifest))
    return path


@pytest.fixture
def gated(tmp_path, make_user):
    root = tmp_path / "root"
    copy_isbi(root / "reference", CASES)
    admin = make_user(Role.ADMIN)
    with override_settings(MAHTQA_DATASET_ROOTS=[root], MAHTQA_DATASET_STORE=tmp_path / "store"):
        reference = dataset_register_folder(path="reference", name="Ref", spacing=ISBI_SPACING)
        good, _, _ = model_version_bundled_register(weights_file=BUNDLED / "mahtnet-v2.pt")
        worse, _, _ = model_version_bundled_register(weights_file=_degraded_bundle(tmp_path))
        model_version_activate(model_version=good, user=admin, gate=False)
        mre = {}
        for mv in (good, worse):
            e = ev.evaluation_start(model_version=mv, dataset_version=reference, split="all")
            mre[mv.pk] = ev.evaluation_execute(evaluation_id=e.pk).metrics["mre_mm"]
        ev.release_gate_update(
            gate=ev.release_gate_get(),
            user=admin,
            enabled=True,
            reference=reference,
            split="all",
            limits={"max_regression_mm": str(REGRESSION_LIMIT)},
        )
        yield admin, good, worse, mre


def test_the_registry_refuses_a_worse_version_naming_the_gate(live_server, page, gated):
    admin, good, worse, mre = gated
    regression = round(mre[worse.pk] - mre[good.pk], 3)
    assert regression > REGRESSION_LIMIT  # deliberately worse, by the measured figures
    login(page, live_server.url, admin.username, PASSWORD, "/models/")
    page.goto(f"{live_server.url}/models/")
    row = page.locator("#model-table tr", has_text="2.0.1-degraded")
    row.locator("button", has_text="Activate").click()
    refusal = page.locator("#model-table .msg-error")
    refusal.wait_for()
    text = refusal.text_content()
    assert "does not pass the release gate" in text
    assert f"MRE regression mm {regression} (limit {REGRESSION_LIMIT})" in text
    assert "2.0.1-degraded" in text
    # the page still says which version is active, and the database agrees
    active_row = page.locator("#model-table tr.active")
    assert re.search(r"2\.0\.0\s", active_row.text_content())
    assert ModelVersion.objects.get(is_active=True) == good
    assert not AuditEvent.objects.filter(action="model_activate", target_id=str(worse.pk)).exists()

    # without JavaScript's fragment swap (a plain form post) the refusal is a 409 page
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"{live_server.url}/models/{worse.pk}/activate/",
        form={"csrfmiddlewaretoken": token},
        headers={"Referer": f"{live_server.url}/models/"},
    )
    assert response.status == 409
    assert f"(limit {REGRESSION_LIMIT})" in response.text()
    assert ModelVersion.objects.get(is_active=True) == good
