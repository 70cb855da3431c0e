"""A registered version is what the engine trains and evaluates on, and the model it
makes records it (item 6 of the Datasets issue)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from apps.datasets.services import dataset_register_folder
from apps.models.services import model_version_register
from mahtqa.cephalometry.isbi import (
    available_case_ids,
    data_path,
    dataset_version_of,
    load_isbi_cases,
    read_seven,
)
from mahtqa.engine import evaluate, train
from tests.datasets.conftest import ISBI, ISBI_SPACING, needs_isbi

pytestmark = [pytest.mark.django_db, needs_isbi]

CASES = [f"{i:03d}" for i in range(1, 13)]


def test_the_manifest_reads_like_the_folder(make_isbi, tmp_path, monkeypatch):
    version = dataset_register_folder(
        path=make_isbi("used", CASES), name="Used", spacing=ISBI_SPACING
    )
    monkeypatch.setenv("MAHTQA_DATASET_STORE", str(tmp_path / "store"))
    manifest = data_path(f"version:{version.pk}")
    assert manifest == tmp_path / "store" / "manifests" / f"{version.pk}.json"
    assert available_case_ids(manifest) == CASES
    case = load_isbi_cases(manifest, ["002"])[0]
    assert np.allclose(
        case.senior, read_seven(ISBI / "annotations" / "senior" / "002.txt"), atol=1e-3
    )
    assert np.allclose(
        case.junior, read_seven(ISBI / "annotations" / "junior" / "002.txt"), atol=1e-3
    )
    assert dataset_version_of(manifest) == {"id": version.pk, "label": "Used v1",
                                            "content_hash": version.content_hash}  # fmt: skip
    with pytest.raises(ValueError, match="no manifest"):
        data_path("version:999999")


def test_evaluate_reads_a_registered_version(make_isbi, tmp_path, monkeypatch, capsys):
    version = dataset_register_folder(
        path=make_isbi("eval", CASES[:4]), name="Eval", spacing=ISBI_SPACING
    )
    monkeypatch.setenv("MAHTQA_DATASET_STORE", str(tmp_path / "store"))
    code = evaluate.main(
        ["--data", f"version:{version.pk}", "--spacing", ISBI_SPACING, "--cases", "all"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["cases"] == CASES[:4]


@pytest.mark.slow
def test_a_model_trained_on_a_version_records_it(make_isbi, tmp_path, monkeypatch):
    version = dataset_register_folder(
        path=make_isbi("train", CASES), name="Train", spacing=ISBI_SPACING
    )
    monkeypatch.setenv("MAHTQA_DATASET_STORE", str(tmp_path / "store"))
    bundle = tmp_path / "trained.pt"
    train.main(["--data", f"version:{version.pk}", "--coarse-steps", "2", "--fine-steps", "2",
                "--out", str(tmp_path / "work"), "--bundle", str(bundle)])  # fmt: skip
    recorded = json.loads(bundle.with_suffix(".json").read_text())["data"]["dataset_version"]
    assert recorded == {"id": version.pk, "label": "Train v1", "content_hash": version.content_hash}
    with override_settings(MAHTQA_MODEL_DIR=tmp_path):
        mv = model_version_register(name="trained", version="0.1", weights_path=str(bundle))
    assert mv.dataset_version_id == version.pk
    Path(bundle).unlink()
