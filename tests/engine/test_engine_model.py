"""MAHT-Net and the U-Net baseline share one interface; configs round-trip."""

from __future__ import annotations

import pytest
import torch

from mahtqa.engine.model import (
    AttentionGate,
    NetConfig,
    TransformerBottleneck,
    build_model,
    count_parameters,
    positional_encoding_2d,
)

SMALL = {
    "channels": (8, 16, 32),
    "transformer_ff": 64,
    "transformer_heads": 2,
    "transformer_layers": 1,
}


@pytest.mark.parametrize("arch", ["mahtnet", "unet"])
def test_heatmap_shape_matches_input(arch):
    model = build_model(NetConfig(arch=arch, **SMALL)).eval()
    out, emb = model(torch.zeros(2, 1, 48, 40), return_embedding=True)
    assert out.shape == (2, 7, 48, 40)
    assert emb.shape == (2, 32)


def test_mahtnet_has_transformer_and_gates_unet_does_not():
    hybrid = build_model(NetConfig(arch="mahtnet", **SMALL))
    plain = build_model(NetConfig(arch="unet", **SMALL))
    assert any(isinstance(m, TransformerBottleneck) for m in hybrid.modules())
    assert sum(isinstance(m, AttentionGate) for m in hybrid.modules()) == 2
    assert not any(isinstance(m, (TransformerBottleneck, AttentionGate)) for m in plain.modules())
    assert count_parameters(hybrid) > count_parameters(plain)


def test_config_round_trip_rebuilds_identical_network():
    cfg = NetConfig(arch="mahtnet", **SMALL)
    again = NetConfig.from_dict(cfg.as_dict())
    assert again == cfg
    a, b = build_model(cfg), build_model(again)
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    x = torch.rand(1, 1, 32, 32)
    assert torch.equal(a(x), b(x))


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"arch": "resnet"})


def test_positional_encoding_distinguishes_positions():
    pe = positional_encoding_2d(16, 4, 5)
    assert pe.shape == (20, 16)
    assert torch.unique(pe, dim=0).shape[0] == 20
    with pytest.raises(ValueError):
        positional_encoding_2d(10, 2, 2)
