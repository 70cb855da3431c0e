"""Training smoke run, determinism, and the evaluation CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mahtqa.engine import evaluate, train
from mahtqa.engine.inference import LandmarkPredictor

BUNDLED = Path(__file__).resolve().parents[2] / "mahtqa/engine/bundled/mahtnet-v1.pt"


@pytest.mark.slow
def test_smoke_training_writes_a_loadable_deterministic_bundle(tmp_path, isbi_root):
    args = [
        "--data",
        str(isbi_root),
        "--max-cases",
        "12",
        "--coarse-steps",
        "2",
        "--fine-steps",
        "2",
    ]
    train.main([*args, "--out", str(tmp_path / "a"), "--bundle", str(tmp_path / "a.pt")])
    train.main([*args, "--out", str(tmp_path / "b"), "--stage", "coarse"])
    first = torch.load(tmp_path / "a" / "coarse-mahtnet.pt", weights_only=True)["state"]
    second = torch.load(tmp_path / "b" / "coarse-mahtnet.pt", weights_only=True)["state"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    predictor = LandmarkPredictor.load(tmp_path / "a.pt")
    manifest = json.loads((tmp_path / "a.json").read_text())
    assert manifest["data"]["truth"] == "mean of senior and junior annotators"
    assert len(manifest["split"]["test"]) == 2
    result = predictor.predict(np.random.default_rng(0).random((300, 200)))
    assert len(result.landmarks) == 7


def test_evaluate_cli_prints_the_metrics_json(capsys, isbi_root):
    code = evaluate.main(
        [
            "--data",
            str(isbi_root),
            "--spacing",
            "0.3,0.3023",
            "--cases",
            "001,002",
            "--weights",
            str(BUNDLED),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_images"] == 2
    assert set(out["sdr"]) == {"2.0", "2.5", "3.0", "4.0"}
    assert set(out["per_landmark_mre_mm"]) == {"S", "N", "A", "B", "Pog", "Me", "Gn"}
    assert sum(out["grades"].values()) == 2
    assert out["mre_mm"] > 0


def test_evaluate_cli_rejects_bad_arguments(capsys, isbi_root):
    with pytest.raises(SystemExit):
        evaluate.main(["--data", str(isbi_root), "--spacing", "abc"])
    code = evaluate.main(
        [
            "--data",
            str(isbi_root),
            "--spacing",
            "0.3,0.3",
            "--cases",
            "999",
            "--weights",
            str(BUNDLED),
        ]
    )
    assert code == 2
    assert "999" in capsys.readouterr().err
