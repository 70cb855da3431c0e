"""ONNX Runtime against torch on the bundled v2 weights (issue 10: runtime equivalence)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases
from mahtqa.engine.data import read_gray
from mahtqa.engine.inference import EngineError, LandmarkPredictor
from mahtqa.engine.runtime import onnx_paths

BUNDLED = Path(__file__).resolve().parents[2] / "mahtqa/engine/bundled"
V2 = BUNDLED / "mahtnet-v2.pt"
TOLERANCE_PX = 0.01  # stated tolerance: landmarks agree to a hundredth of a pixel


def test_onnx_runtime_gives_the_torch_landmarks_and_risks(isbi_root):
    torch_engine = LandmarkPredictor.load(V2, runtime="torch", num_threads=2)
    ort_engine = LandmarkPredictor.load(V2, runtime="auto", num_threads=2)
    assert torch_engine.runtime == "torch"
    assert ort_engine.runtime == "onnxruntime"
    for case in load_isbi_cases(isbi_root, ["002", "033", "077"]):
        image = read_gray(case.image_path)
        a = torch_engine.predict(image, spacing_mm=ISBI_SPACING_MM)
        b = ort_engine.predict(image, spacing_mm=ISBI_SPACING_MM)
        assert np.abs(np.array(a.points()) - np.array(b.points())).max() < TOLERANCE_PX
        assert b.case_risk == pytest.approx(a.case_risk, abs=1e-4)
        assert b.ood_score == pytest.approx(a.ood_score, abs=1e-3)


def test_batches_give_the_same_landmarks_as_single_images(isbi_root):
    engine = LandmarkPredictor.load(V2, num_threads=2)
    images = [read_gray(c.image_path) for c in load_isbi_cases(isbi_root, ["004", "005", "006"])]
    batch = engine.predict_batch(images)
    for image, together in zip(images, batch, strict=True):
        alone = engine.predict(image)
        assert np.abs(np.array(alone.points()) - np.array(together.points())).max() < TOLERANCE_PX


def test_onnx_files_that_do_not_match_are_an_error_not_a_fallback(tmp_path):
    for path in [V2, *onnx_paths(V2).values(), *BUNDLED.glob("mahtnet-v2.*.onnx.data")]:
        shutil.copy(path, tmp_path / path.name)
    copy = tmp_path / V2.name
    weights = Path(str(onnx_paths(copy)["fine"]) + ".data")  # the fine network's weights
    weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)
    with pytest.raises(EngineError, match="sha256"):
        LandmarkPredictor.load(copy)
    assert LandmarkPredictor.load(copy, runtime="torch").runtime == "torch"


def test_asking_for_onnx_without_its_files_is_an_error():
    with pytest.raises(EngineError, match="ONNX"):
        LandmarkPredictor.load(BUNDLED / "mahtnet-v1.pt", runtime="onnx")
    assert LandmarkPredictor.load(BUNDLED / "mahtnet-v1.pt").runtime == "torch"


def test_the_own_channel_taken_before_the_softmax_is_the_same_heat():
    """The fine stage keeps each crop's own landmark channel before the spatial softmax;
    the points, peaks and spreads are exactly those of the softmax over every channel."""
    import torch

    from mahtqa.engine.heatmaps import as_heatmap, decode, spread
    from mahtqa.engine.inference import N_LANDMARKS

    engine = LandmarkPredictor.load(V2, runtime="torch", num_threads=2)
    rng = np.random.default_rng(7)
    patches = list(rng.random((2 * N_LANDMARKS, 72, 72), dtype=np.float32))
    with torch.inference_mode():  # as analyse_batch runs it
        pts, peak, spr, _ = engine._run_fine(patches)
        heat = as_heatmap(engine.fine(torch.from_numpy(np.stack(patches))[:, None]).float(),
                          engine.fine.config)  # fmt: skip
        own = heat[torch.arange(len(patches)), torch.arange(N_LANDMARKS).repeat(2)][:, None]
        ref_pts, ref_peak = decode(own, radius=3)
        ref_spr = spread(own, ref_pts, radius=6)
    assert np.array_equal(pts, ref_pts[:, 0].numpy().astype(np.float64))
    assert np.array_equal(peak, ref_peak[:, 0].numpy())
    assert np.array_equal(spr, ref_spr[:, 0].numpy())


def test_onnx_runtime_threads_do_not_spin_between_runs():
    """Spinning ONNX Runtime threads took the cores from torch's post-processing between
    the networks' calls (docs/benchmarks.md: 174 to 118 ms per radiograph)."""
    engine = LandmarkPredictor.load(V2, runtime="onnx", num_threads=2)
    for net in (engine.coarse, engine.fine):
        options = net.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
