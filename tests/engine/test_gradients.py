"""The gradient monitor on toy models with known pathologies, and its train_stage hook."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mahtqa.engine.gradients import GradientMonitor

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "isbi2015-subset"


def _step(model, monitor, step, x, loss_scale=1.0, lr=1e-2, target=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.zero_grad()
    out = model(x)
    value = (out if target is None else out - target).square().mean() * loss_scale
    value.backward()
    stats = monitor.after_backward(step)
    opt.step()
    monitor.after_step(step)
    return stats


def _conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))


def _codes(monitor):
    return {f.code for f in monitor.findings}


def test_exploding_gradients_are_found_when_the_loss_is_scaled_1e6():
    model = _conv_net()
    monitor = GradientMonitor(model, every=1)
    stats = _step(model, monitor, 0, torch.rand(4, 1, 16, 16), loss_scale=1e6)
    assert stats["grad_norm"] > 10
    found = [f for f in monitor.findings if f.code == "exploding_gradients"]
    assert len(found) == 1
    assert found[0].value == stats["grad_norm"]
    assert found[0].threshold == 10.0
    assert found[0].layer == max(stats["layers"], key=stats["layers"].get)
    assert any("clip" in s for s in found[0].solutions)
    assert set(stats["layers"]) == {"0", "2"}
    per_layer = math.sqrt(sum(v * v for v in stats["layers"].values()))
    assert stats["grad_norm"] == pytest.approx(per_layer)


def test_a_healthy_step_has_no_gradient_findings():
    model = _conv_net()
    monitor = GradientMonitor(model, every=1)
    stats = _step(model, monitor, 0, torch.rand(4, 1, 16, 16))
    assert 1e-7 < stats["grad_norm"] < 10
    assert not _codes(monitor) & {"exploding_gradients", "vanishing_gradients", "dead_units"}


def test_non_finite_gradients_count_as_exploding():
    model = _conv_net()
    monitor = GradientMonitor(model, every=1)
    model(torch.rand(2, 1, 8, 8)).sum().backward()
    model[0].weight.grad[0, 0, 0, 0] = math.inf
    monitor.after_backward(0)
    assert [f.code for f in monitor.findings] == ["exploding_gradients"]
    assert "not finite" in monitor.findings[0].message


def test_vanishing_gradients_in_the_first_layers_of_a_deep_sigmoid_stack():
    torch.manual_seed(0)
    layers = []
    for _ in range(30):
        layers += [nn.Linear(16, 16), nn.Sigmoid()]
    model = nn.Sequential(*layers)
    monitor = GradientMonitor(model, every=1)
    stats = _step(model, monitor, 0, torch.rand(8, 16))
    found = [f for f in monitor.findings if f.code == "vanishing_gradients"]
    assert len(found) == 1  # one finding per code and sampled step, at the worst layer
    assert found[0].layer == "0"
    assert found[0].value < 1e-7
    assert stats["layers"]["0"] < 1e-7 < stats["layers"]["58"]
    assert any("residual" in s for s in found[0].solutions)


def test_vanishing_total_gradient_when_the_loss_is_scaled_1e_minus_12():
    model = _conv_net()
    monitor = GradientMonitor(model, every=1)
    stats = _step(model, monitor, 0, torch.rand(4, 1, 16, 16), loss_scale=1e-12)
    found = [f for f in monitor.findings if f.code == "vanishing_gradients"]
    assert stats["grad_norm"] < 1e-7
    assert [(f.layer, f.value) for f in found] == [("(total)", stats["grad_norm"])]


def test_dead_units_after_a_relu_behind_a_bias_of_minus_1e3():
    model = _conv_net()
    with torch.no_grad():
        model[0].bias[:6] = -1e3  # 6 of the 8 output channels never pass the ReLU
    monitor = GradientMonitor(model, every=1)
    stats = _step(model, monitor, 0, torch.rand(4, 1, 16, 16))
    assert stats["dead_fraction"] == {"0": 0.75, "2": 0.0}
    found = [f for f in monitor.findings if f.code == "dead_units"]
    assert [(f.layer, f.value, f.threshold) for f in found] == [("0", 0.75, 0.5)]
    assert "6/8 output channels" in found[0].message
    with torch.no_grad():
        model[0].bias[:6] = 0.0
    monitor.findings.clear()
    _step(model, monitor, 1, torch.rand(4, 1, 16, 16))
    assert "dead_units" not in _codes(monitor)


def test_update_ratio_high_and_low():
    x = torch.rand(4, 1, 16, 16)
    model = _conv_net()
    high = GradientMonitor(model, every=1)
    stats = _step(model, high, 0, x, loss_scale=1e3, lr=10.0, target=torch.ones(4, 2, 16, 16))
    assert max(stats["update_ratio"].values()) > 0.1
    assert "update_ratio_high" in _codes(high)
    model = _conv_net()
    low = GradientMonitor(model, every=1)
    stats = _step(model, low, 0, x, lr=1e-9)
    assert max(stats["update_ratio"].values()) < 1e-5
    assert {f.code for f in low.findings} == {"update_ratio_low"}


def test_per_layer_norms_update_ratios_and_dead_fractions_match_a_hand_computation():
    model = _conv_net()
    with torch.no_grad():
        model[0].weight[:3] = 0.0  # channels 0-2 of the first conv: zero output ...
        model[0].bias[:3] = -1.0  # ... below the ReLU, so their weight gradient is 0
    monitor = GradientMonitor(model, every=1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    value = model(torch.rand(4, 1, 16, 16)).square().mean()
    value.backward()
    stats = monitor.after_backward(0)
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    monitor.after_step(0)

    def norm(tensors):
        return torch.sqrt(sum(t.double().square().sum() for t in tensors)).item()

    for layer in ("0", "2"):
        mine = [n for n in grads if n.startswith(layer + ".")]
        assert stats["layers"][layer] == pytest.approx(norm(grads[n] for n in mine), rel=1e-6)
        after = dict(model.named_parameters())
        delta = norm(after[n].detach() - before[n] for n in mine)
        ratio = delta / norm(before[n] for n in mine)
        assert stats["update_ratio"][layer] == pytest.approx(ratio, rel=1e-5)
    assert stats["dead_fraction"] == {"0": 3 / 8, "2": 0.0}
    assert "dead_units" not in _codes(monitor)  # 37.5 % < the 50 % threshold


def test_only_every_nth_step_is_sampled():
    model = _conv_net()
    monitor = GradientMonitor(model, every=3)
    results = [_step(model, monitor, s, torch.rand(2, 1, 8, 8)) for s in range(7)]
    assert [r is not None for r in results] == [s % 3 == 0 for s in range(7)]
    assert [h["step"] for h in monitor.history] == [0, 3, 6]
    assert all("update_ratio" in h for h in monitor.history)
    with pytest.raises(ValueError, match="every"):
        GradientMonitor(model, every=0)


@pytest.fixture(scope="module")
def four_samples():
    if not (DATA / "images").is_dir():
        pytest.skip(f"ISBI subset not found at {DATA}")
    from mahtqa.engine.data import all_case_ids, load_samples

    return load_samples(DATA, all_case_ids(DATA)[:4])


@pytest.mark.slow
def test_train_stage_reports_every_step_and_the_monitor_does_not_change_training(
    tmp_path, four_samples
):
    from mahtqa.engine.train import train_stage

    common = dict(stage="coarse", arch="mahtnet", samples=four_samples, steps=3, seed=0,
                  loss="ce", size="small", recipe="v2")  # fmt: skip
    seen = []
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        hooked = train_stage(
            **common, val=four_samples[:1], out=tmp_path / "a",
            on_step=lambda s, m: seen.append((s, m)), grad_monitor_every=2,
        )  # fmt: skip
        plain = train_stage(**common, val=[], out=tmp_path / "b")
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert [s for s, _ in seen] == [0, 1, 2]
    assert all(m["train_loss"] > 0 and m["lr"] > 0 for _, m in seen)
    assert ["grad_norm" in m for _, m in seen] == [True, False, True]
    assert all(m["grad_norm"] > 0 for _, m in seen if "grad_norm" in m)
    assert ["val_loss" in m for _, m in seen] == [False, False, True]  # validates at the end
    assert seen[2][1]["val_mre"] > 0
    a = torch.load(hooked, weights_only=True)["state"]
    b = torch.load(plain, weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
