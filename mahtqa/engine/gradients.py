"""Gradient health monitor for any PyTorch training loop.

    monitor = GradientMonitor(model, every=10)
    for step in range(steps):
        loss.backward()
        stats = monitor.after_backward(step)   # dict on sampled steps, else None
        optimizer.step()
        monitor.after_step(step)
    monitor.findings                           # GradientFinding, at most one per code and step

Checks (the troubleshooting guide's detect_training_issues, section 4.1, per layer):
total gradient norm above ``explode`` (10) or non-finite, below ``vanish`` (1e-7) in
total or in a layer; dead units (conv/linear output channels whose weight gradient is
exactly zero, ReLU death); the update ratio ||dw|| / ||w|| per layer outside
``update_ratio_range``. A "layer" is a module: the parameter tensors of one module are
grouped by the module's name. Only sampled steps (``step % every == 0``) cost anything:
one ``torch._foreach_norm`` over the gradients, a reduction per conv/linear weight and a
single ``.tolist()``; the parameters are copied on sampled steps only, for the ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

SOLUTIONS = {
    "exploding_gradients": (
        "Add gradient clipping: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
        "Lower the learning rate (by a factor of 2-5) or lengthen the warm-up",
        "Check the loss scale and the inputs/targets for outliers or NaN",
    ),
    "vanishing_gradients": (
        "Check activation functions and architecture depth",
        "Add residual connections",
        "Add batch normalisation",
        "Use an initialisation suited to the activation (Kaiming/He for ReLU)",
        "Consider different activation functions (ReLU/GELU instead of sigmoid/tanh)",
    ),
    "dead_units": (
        "Lower the learning rate",
        "Use LeakyReLU or GELU instead of ReLU",
        "Check the initialisation and the biases (no large negative biases)",
        "Add batch normalisation before the activation",
    ),
    "update_ratio_high": (
        "Lower the learning rate (updates are a large fraction of the weights)",
        "Add warm-up and gradient clipping",
    ),
    "update_ratio_low": (
        "Raise the learning rate, or check the schedule (a cosine schedule ends near 0)",
        "Check for vanishing gradients or frozen parameters",
    ),
}


@dataclass(frozen=True)
class GradientFinding:
    code: str  # a key of SOLUTIONS
    step: int
    layer: str
    value: float
    threshold: float
    message: str
    solutions: tuple[str, ...]


def _module_name(param_name: str) -> str:
    return param_name.rpartition(".")[0] or "(root)"


class GradientMonitor:
    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 10,
        explode: float = 10.0,
        vanish: float = 1e-7,
        dead_fraction: float = 0.5,
        update_ratio_range: tuple[float, float] = (1e-5, 1e-1),
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, not {every!r}")
        low, high = update_ratio_range
        if not (0 <= vanish < explode and 0 < dead_fraction <= 1 and 0 <= low < high):
            raise ValueError("need 0 <= vanish < explode, 0 < dead_fraction <= 1, low < high")
        self.every = every
        self.explode, self.vanish, self.dead_fraction = explode, vanish, dead_fraction
        self.ratio_low, self.ratio_high = low, high
        self.findings: list[GradientFinding] = []
        self.history: list[dict] = []
        self._params: list[torch.Tensor] = []
        self._layer_of: list[int] = []  # parameter index -> layer index
        index: dict[str, int] = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                self._params.append(p)
                self._layer_of.append(index.setdefault(_module_name(name), len(index)))
        self.layers: list[str] = list(index)
        # conv/linear weights: (layer name, parameter, output-channel dimension)
        self._units: list[tuple[str, torch.Tensor, int]] = []
        for name, module in model.named_modules():
            weight = getattr(module, "weight", None)
            if isinstance(module, nn.Linear | nn.modules.conv._ConvNd) and weight is not None:
                transposed = getattr(module, "transposed", False)
                if weight.requires_grad:
                    self._units.append((name or "(root)", weight, 1 if transposed else 0))
        self._pending: tuple[int, dict, list[int], list[torch.Tensor]] | None = None
        self._index_cache: tuple | None = None

    def _record(self, code, step, layer, value, threshold, message) -> None:
        self.findings.append(
            GradientFinding(code, step, layer, value, threshold, message, SOLUTIONS[code])
        )

    def _layer_norms(self, index: list[int], tensors: list[torch.Tensor]) -> torch.Tensor:
        """Per-layer L2 norms (float64) of ``tensors``, tensor ``k`` belonging to parameter
        ``index[k]``; NaN for a layer without any tensor."""
        sq = torch.stack(torch._foreach_norm(tensors, 2, dtype=torch.float32)).double().square()
        key = (sq.device, tuple(index))
        if self._index_cache is None or self._index_cache[0] != key:
            layer_of = torch.tensor([self._layer_of[i] for i in index], device=sq.device)
            present = torch.zeros(len(self.layers), dtype=torch.bool, device=sq.device)
            present[layer_of] = True
            self._index_cache = (key, layer_of, ~present)
        _, layer_of, absent = self._index_cache
        out = torch.zeros(len(self.layers), dtype=torch.float64, device=sq.device)
        return out.index_add_(0, layer_of, sq).sqrt().masked_fill(absent, math.nan)

    def after_backward(self, step: int) -> dict | None:
        """Between ``loss.backward()`` and ``optimizer.step()``; None on unsampled steps."""
        if step % self.every:
            return None
        index = [i for i, p in enumerate(self._params) if p.grad is not None]
        if not index:
            return None
        norms = self._layer_norms(index, [self._params[i].grad.detach() for i in index])
        units = [(name, w.grad.detach(), dim) for name, w, dim in self._units if w.grad is not None]
        dead = [
            (g.movedim(dim, 0).flatten(1) != 0).any(1).logical_not().sum() for _, g, dim in units
        ]
        if dead:
            norms = torch.cat([norms, torch.stack(dead).to(norms)])
        values = norms.tolist()  # the one device-to-host transfer of the sampled step
        layer_values = values[: len(self.layers)]
        dead_counts = [int(c) for c in values[len(self.layers) :]]
        layers = {n: v for n, v in zip(self.layers, layer_values, strict=True) if not math.isnan(v)}
        total = math.sqrt(sum(v * v for v in layers.values()))
        channels = [g.shape[dim] for _, g, dim in units]
        fractions = {
            name: count / ch
            for (name, _, _), count, ch in zip(units, dead_counts, channels, strict=True)
        }
        entry = {"step": step, "grad_norm": total, "layers": layers, "dead_fraction": fractions}
        self.history.append(entry)
        self._check_gradients(step, total, layers)
        self._check_dead(step, fractions, dead_counts, channels)
        weights = [self._params[i].detach() for i in index]
        self._pending = (step, entry, index, torch._foreach_mul(weights, 1.0))  # a copy
        return entry

    def _check_gradients(self, step: int, total: float, layers: dict[str, float]) -> None:
        largest = max(layers, key=layers.get) if layers else "(none)"
        if not math.isfinite(total) or total > self.explode:
            what = "not finite" if not math.isfinite(total) else f"{total:.3g} > {self.explode:g}"
            self._record(
                "exploding_gradients",
                step,
                largest,
                total,
                self.explode,
                f"step {step}: total gradient norm {what} (largest in {largest}: "
                f"{layers.get(largest, math.nan):.3g})",
            )
            return
        if total < self.vanish:
            self._record(
                "vanishing_gradients",
                step,
                "(total)",
                total,
                self.vanish,
                f"step {step}: total gradient norm {total:.3g} < {self.vanish:g}",
            )
            return
        low = sorted((v, n) for n, v in layers.items() if v < self.vanish)
        if low:
            names = ", ".join(n for _, n in low[:5]) + (", ..." if len(low) > 5 else "")
            self._record(
                "vanishing_gradients",
                step,
                low[0][1],
                low[0][0],
                self.vanish,
                f"step {step}: {len(low)} layer(s) with gradient norm < {self.vanish:g}: {names}",
            )

    def _check_dead(self, step, fractions: dict[str, float], counts, channels) -> None:
        bad = sorted(
            ((f, n) for n, f in fractions.items() if f >= self.dead_fraction), reverse=True
        )
        if bad:
            frac, name = bad[0]
            k = list(fractions).index(name)
            self._record(
                "dead_units",
                step,
                name,
                frac,
                self.dead_fraction,
                f"step {step}: {counts[k]}/{channels[k]} output channels of {name} have "
                f"an exactly zero weight gradient ({len(bad)} layer(s) >= "
                f"{self.dead_fraction:.0%})",
            )

    def after_step(self, step: int) -> None:
        """After ``optimizer.step()``: the update ratio ||dw|| / ||w|| on sampled steps."""
        if self._pending is None or self._pending[0] != step:
            return
        _, entry, index, before = self._pending
        self._pending = None
        after = [self._params[i].detach() for i in index]
        delta = self._layer_norms(index, torch._foreach_sub(after, before))
        ratio = (delta / self._layer_norms(index, before)).tolist()
        ratios = {n: r for n, r in zip(self.layers, ratio, strict=True) if math.isfinite(r)}
        entry["update_ratio"] = ratios
        for code, pick, bound, sign in (
            ("update_ratio_high", max, self.ratio_high, ">"),
            ("update_ratio_low", min, self.ratio_low, "<"),
        ):
            over = [n for n, r in ratios.items() if (r > bound if sign == ">" else r < bound)]
            if over:
                worst = pick(over, key=ratios.get)
                self._record(
                    code,
                    step,
                    worst,
                    ratios[worst],
                    bound,
                    f"step {step}: update/weight ratio {ratios[worst]:.3g} {sign} "
                    f"{bound:g} in {worst} ({len(over)} layer(s))",
                )

    def summary(self) -> list[dict]:
        """The findings grouped by (code, layer): count, first step, worst value."""
        groups: dict[tuple[str, str], dict] = {}
        for f in self.findings:
            g = groups.setdefault(
                (f.code, f.layer),
                {
                    "code": f.code,
                    "layer": f.layer,
                    "count": 0,
                    "first_step": f.step,
                    "worst": f.value,
                    "message": f.message,
                },
            )
            g["count"] += 1
            high = f.code in ("exploding_gradients", "dead_units", "update_ratio_high")
            if (f.value > g["worst"]) if high else (f.value < g["worst"]):
                g["worst"], g["message"] = f.value, f.message
        return list(groups.values())
