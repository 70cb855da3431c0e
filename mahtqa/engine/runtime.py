"""ONNX Runtime for inference on the CPU; torch stays for training and the GPU path.

    python -m mahtqa.engine.runtime --weights mahtqa/engine/bundled/mahtnet-v2.pt

exports both networks beside the weights (``<stem>.coarse.onnx``, ``<stem>.fine.onnx``,
dynamo exporter, opset 18) and records their sha256 in ``<stem>.onnx.json``. At load,
``LandmarkPredictor.load(..., runtime="auto")`` uses them on the CPU when they are
present and ``onnxruntime`` is installed; a file whose sha256 does not match is an
error, not a silent fallback. ``tests/engine/test_runtime.py`` checks that ONNX Runtime
and torch give the same landmarks on the bundled weights (within 0.01 px).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from mahtqa.engine.preprocess import COARSE_H, COARSE_W


class OnnxRuntimeError(Exception):
    """The ONNX files beside the weights cannot be used."""


def onnx_paths(weights: Path) -> dict[str, Path]:
    weights = Path(weights)
    stem = weights.with_suffix("")
    return {
        "coarse": stem.with_name(stem.name + ".coarse.onnx"),
        "fine": stem.with_name(stem.name + ".fine.onnx"),
        "index": stem.with_name(stem.name + ".onnx.json"),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _part_digest(path: Path) -> str:
    """The graph and, when the exporter wrote them apart, its weights (``.onnx.data``)."""
    digest = hashlib.sha256(Path(path).read_bytes())
    data = Path(str(path) + ".data")
    if data.is_file():
        digest.update(data.read_bytes())
    return digest.hexdigest()


class _Coarse(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x, return_embedding=True)


def export(weights: Path, fine_crop: int = 72) -> dict[str, str]:
    from mahtqa.engine.inference import LandmarkPredictor

    predictor = LandmarkPredictor.load(weights, runtime="torch")
    paths = onnx_paths(weights)
    x = torch.zeros(2, 1, COARSE_H, COARSE_W)
    torch.onnx.export(
        _Coarse(predictor.coarse).eval(), (x,), str(paths["coarse"]), dynamo=True,
        opset_version=18, input_names=["image"], output_names=["heatmaps", "embedding"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
    )  # fmt: skip
    patch = torch.zeros(12, 1, fine_crop, fine_crop)
    torch.onnx.export(
        predictor.fine.eval(), (patch,), str(paths["fine"]), dynamo=True, opset_version=18,
        input_names=["patches"], output_names=["heatmaps"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
    )  # fmt: skip
    index = {
        "weights_sha256": _sha256(weights),
        "coarse": {"file": paths["coarse"].name, "sha256": _part_digest(paths["coarse"])},
        "fine": {"file": paths["fine"].name, "sha256": _part_digest(paths["fine"])},
        "opset": 18,
        "onnxruntime_tested": _ort_version(),
    }
    paths["index"].write_text(json.dumps(index, indent=1))
    return {k: str(v) for k, v in paths.items()}


def _ort_version() -> str:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:  # pragma: no cover - only when exporting without the runtime
        return ""


class OrtNet:
    """Stands in for a torch network at inference: same call, same tensors out."""

    def __init__(self, path: Path, torch_net, *, threads: int, embedding: bool):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning between runs: the engine runs torch's post-processing and Python
        # between the networks' calls, and ONNX Runtime's threads spinning for work took
        # those two cores from them (bench/engine.py: 195 to 106-121 ms per radiograph).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.torch_net = torch_net  # kept for its config and parameters (tools, not inference)
        self.config = torch_net.config
        self.embedding = embedding

    def __call__(self, x: torch.Tensor, return_embedding: bool = False):
        out = self.session.run(None, {self.input: np.ascontiguousarray(x.numpy(), np.float32)})
        heat = torch.from_numpy(out[0])
        if self.embedding and return_embedding:
            return heat, torch.from_numpy(out[1])
        return heat

    def parameters(self):
        return self.torch_net.parameters()

    def to(self, device):  # the CPU only
        return self

    def eval(self):
        return self


def ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def ort_nets(weights: Path, coarse, fine, *, threads: int):
    """(coarse, fine) ONNX Runtime stand-ins, or None when no ONNX files are beside the
    weights. Raises OnnxRuntimeError when they are there but do not belong to them."""
    paths = onnx_paths(weights)
    if not paths["index"].is_file():
        return None
    index = json.loads(paths["index"].read_text())
    if index.get("weights_sha256") != _sha256(weights):
        raise OnnxRuntimeError(f"{paths['index'].name} was exported from other weights")
    for part in ("coarse", "fine"):
        if _part_digest(paths[part]) != index[part]["sha256"]:
            raise OnnxRuntimeError(f"{paths[part].name}: sha256 does not match its index")
    return (
        OrtNet(paths["coarse"], coarse, threads=threads, embedding=True),
        OrtNet(paths["fine"], fine, threads=threads, embedding=False),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(export(args.weights), indent=1))


if __name__ == "__main__":
    main()
