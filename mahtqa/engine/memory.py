"""Training-memory analysis of the engine networks, measured rather than guessed.

    from mahtqa.engine.memory import analyze_memory
    report = analyze_memory(network="coarse", size="small", batch_size=8, target_bytes=2**30)

Parameters, gradients and optimiser state follow from the parameter count (Adam/AdamW:
two state tensors per parameter, SGD with momentum: one). Activations are measured: real
training steps (the batch sizes of ``CALIBRATION``) run under ``saved_tensors_hooks``
that count the unique storages autograd saves for backward (parameters and batch
excluded); the same steps run under a peak meter, and what the peak holds beyond those
parts is the *workspace* (backward's transient gradients, kernel scratch). Each part is
a line through each calibration pair and the prediction takes the upper envelope of the
lines: the kernels change regime with the batch (oneDNN's CPU convolutions take another
layout from batch 16 on, adding ~3 % to the peak), so a small pair (1, 3) alone would
under-predict large batches; the envelope is exact in either regime and at most a few
per cent high between them.

Peak meter: on CUDA ``torch.cuda.reset_peak_memory_stats`` / ``max_memory_allocated``.
The CPU allocator keeps no peak statistics in torch 2.13 (``torch.cpu`` has no memory
API, ``torch.accelerator`` covers accelerators only), so on CPU the step runs under
``torch.profiler.profile(profile_memory=True)`` and the peak is the maximum of the
running sum of the allocation events (``_EventType.Allocation``, ``alloc_size`` is
negative for a free) in the profiler's event tree. The model, optimiser and batch are
created inside the window, so the figure is everything the training step holds, as
CUDA's ``max_memory_allocated`` would report it.

Precision "bf16"/"fp16" is autocast mixed precision: fp32 master parameters, gradients
and optimiser state; the batch is handed over in the low precision.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections import namedtuple
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mahtqa.engine.model import build_model
from mahtqa.engine.preprocess import COARSE_H, COARSE_W
from mahtqa.engine.train import FINE_CROP, SIZES, coarse_config, fine_config, heatmap_loss

NETWORKS = ("coarse", "fine")
OPTIMIZERS = {"adam": 2, "adamw": 2, "sgd": 1}  # state tensors per parameter (SGD: momentum)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_HW = {"coarse": (COARSE_H, COARSE_W), "fine": (FINE_CROP, FINE_CROP)}
BATCHES = (1, 2, 4, 8, 16, 32, 64)
CALIBRATION = ((1, 3), (16, 20))  # pairs of batch sizes of the measured calibration steps


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes at the predicted peak; ``peak_predicted`` is the sum of the other fields."""

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int
    batch: int
    workspace: int
    peak_predicted: int


@dataclass(frozen=True)
class Recommendation:
    """``predicted_effect_bytes``: predicted reduction of the peak (positive saves memory)."""

    code: str  # "gradient_checkpointing" | "mixed_precision" | "smaller_batch" | "no_batch_fits"
    message: str
    predicted_effect_bytes: int
    batch_size: int | None = None


@dataclass(frozen=True)
class MemoryReport:
    config: dict
    input_hw: tuple[int, int]
    batch_size: int
    optimizer: str
    precision: str
    device: str
    breakdown: MemoryBreakdown
    per_batch: dict[int, int]
    target_bytes: int | None
    fits: bool | None
    max_batch_that_fits: int | None
    recommendations: tuple[Recommendation, ...]
    measured_peak: int | None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["input_hw"] = list(self.input_hw)
        data["per_batch"] = {str(k): v for k, v in self.per_batch.items()}
        return data


_Spec = namedtuple("_Spec", "network size input_hw optimizer precision device arch loss")


def _config(spec: _Spec):
    make = coarse_config if spec.network == "coarse" else fine_config
    return make(spec.arch, spec.loss, spec.size)


@dataclass(frozen=True)
class _Envelope:
    """The maximum of lines ``(const, slope)`` in the batch size."""

    lines: tuple[tuple[float, float], ...]

    def __call__(self, batch: int) -> int:
        return round(max(const + slope * batch for const, slope in self.lines))


def _envelope(values: dict[int, float]) -> _Envelope:
    """Lines through the measured ``values`` (batch -> bytes) of each calibration pair."""
    lines = []
    for b1, b2 in CALIBRATION:
        slope = (values[b2] - values[b1]) / (b2 - b1)
        lines.append((values[b1] - slope * b1, slope))
    return _Envelope(tuple(lines))


def _spec(network, size, input_hw, optimizer, precision, device, arch="mahtnet", loss="ce"):
    for name, value, choices in (
        ("network", network, NETWORKS), ("size", size, tuple(SIZES)),
        ("optimizer", optimizer, tuple(OPTIMIZERS)), ("precision", precision, tuple(PRECISIONS)),
        ("arch", arch, ("mahtnet", "unet")), ("loss", loss, ("mse", "ce")),
    ):  # fmt: skip
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, not {value!r}")
    hw = DEFAULT_HW[network] if input_hw is None else tuple(input_hw)
    least = 2 ** len(SIZES[size][network][0])  # the bottom level keeps >= 2x2 pixels
    if len(hw) != 2 or not all(isinstance(v, int) and v >= least for v in hw):
        raise ValueError(
            f"input_hw for {network} must be two integers >= {least}, not {input_hw!r}"
        )
    kind = device.partition(":")[0] if isinstance(device, str) else None
    if kind not in ("cpu", "cuda") or (kind == "cuda" and not torch.cuda.is_available()):
        raise ValueError(f"device must be 'cpu' or an available 'cuda[:N]', not {device!r}")
    return _Spec(network, size, hw, optimizer, precision, str(torch.device(device)), arch, loss)


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


@contextlib.contextmanager
def _peak_meter(device: torch.device):
    """Yields a one-item list that holds, on exit, the peak bytes allocated inside the
    block counted from its start."""
    peak = [0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield peak
        torch.cuda.synchronize(device)
        peak[0] = torch.cuda.max_memory_allocated(device) - base
        return
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        yield peak
    peak[0] = _cpu_peak(prof.profiler.kineto_results.experimental_event_tree())


def _cpu_peak(roots) -> int:
    from torch._C._profiler import _EventType

    events, stack = [], list(roots)
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    running = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        running += size
        peak = max(peak, running)
    return peak


class _SavedBytes:
    """Unique storages saved for backward while active, minus the excluded ones."""

    def __init__(self, exclude: list[torch.Tensor]):
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._seen: dict[int, int] = {}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr and ptr not in self._exclude:
            self._seen[ptr] = max(self._seen.get(ptr, 0), storage.nbytes())
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    @property
    def total(self) -> int:
        return sum(self._seen.values())


class _Checkpointed(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self.block, x, use_reentrant=False)


def _checkpoint_blocks(model: nn.Module) -> None:
    """Wrap every encoder/decoder block and the transformer bottleneck in a checkpoint."""
    for blocks in (model.down, model.up):
        for i, block in enumerate(blocks):
            blocks[i] = _Checkpointed(block)
    if not isinstance(model.bottleneck, nn.Identity):
        model.bottleneck = _Checkpointed(model.bottleneck)


def _optimizer(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=2e-3, weight_decay=1e-4)


def _batch(spec: _Spec, model: nn.Module, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    cfg, dtype = model.config, PRECISIONS[spec.precision] or torch.float32
    x = torch.rand(batch, cfg.in_channels, *spec.input_hw, device=spec.device, dtype=dtype)
    y = torch.rand(batch, cfg.out_channels, *spec.input_hw, device=spec.device, dtype=dtype)
    return x, y


def _train_step(spec: _Spec, model, opt, x, y, saved: _SavedBytes | None = None) -> None:
    opt.zero_grad(set_to_none=True)
    dtype = PRECISIONS[spec.precision]
    device_type = torch.device(spec.device).type
    amp = torch.autocast(device_type, dtype=dtype) if dtype else contextlib.nullcontext()
    with amp, saved.hooks() if saved else contextlib.nullcontext():
        value = heatmap_loss(model(x), y, spec.loss)
    value.backward()
    opt.step()


def _probe(spec: _Spec, batch: int, *, count_saved: bool = False, ckpt: bool = False):
    """One measured training step at ``batch`` (after a batch-1 step that creates the
    optimiser state): returns (peak bytes, bytes saved for backward or None)."""
    device = torch.device(spec.device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked), _peak_meter(device) as peak:
        model = build_model(_config(spec)).to(device).train()
        if ckpt:
            _checkpoint_blocks(model)
        opt = _optimizer(spec.optimizer, model.parameters())
        _train_step(spec, model, opt, *_batch(spec, model, 1))
        x, y = _batch(spec, model, batch)
        saved = _SavedBytes([*model.parameters(), x, y]) if count_saved else None
        _train_step(spec, model, opt, x, y, saved)
        del model, opt, x, y
    return peak[0], (saved.total if saved else None)


def measure_peak(
    *, network: str = "coarse", size: str = "base", input_hw: tuple[int, int] | None = None,
    batch_size: int, optimizer: str = "adamw", precision: str = "fp32", device: str = "cpu",
    arch: str = "mahtnet", loss: str = "ce",
) -> int:  # fmt: skip
    """Peak bytes allocated by a real forward + backward + optimiser step (steady state:
    the optimiser state exists), including the model, its gradients and the batch."""
    _check_positive("batch_size", batch_size)
    spec = _spec(network, size, input_hw, optimizer, precision, device, arch, loss)
    return _probe(spec, batch_size)[0]


@dataclass(frozen=True)
class _Calibration:
    parameters: int
    gradients: int
    optimizer_state: int
    batch_per_sample: int
    activations: _Envelope
    workspace: _Envelope
    checkpointed_peak: _Envelope

    def peak(self, batch: int) -> int:
        parts = self.activations(batch) + self.batch_per_sample * batch + self.workspace(batch)
        return self.parameters + self.gradients + self.optimizer_state + parts


@functools.lru_cache(maxsize=32)
def _calibrate(spec: _Spec) -> _Calibration:
    model = build_model(_config(spec))
    params = list(model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    grad_bytes = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    step_bytes = 4 * len(params) if spec.optimizer != "sgd" else 0  # Adam's "step" tensors
    opt_bytes = OPTIMIZERS[spec.optimizer] * param_bytes + step_bytes
    elem = (PRECISIONS[spec.precision] or torch.float32).itemsize
    per_sample = (model.config.in_channels + model.config.out_channels) * math.prod(spec.input_hw)
    per_sample *= elem
    sizes = sorted({b for pair in CALIBRATION for b in pair})
    probes = {b: _probe(spec, b, count_saved=True) for b in sizes}
    static = param_bytes + grad_bytes + opt_bytes
    saved = {b: a for b, (_, a) in probes.items()}
    work = {b: m - static - a - per_sample * b for b, (m, a) in probes.items()}
    ckpt = {b: _probe(spec, b, ckpt=True)[0] for b in sizes}
    return _Calibration(
        parameters=param_bytes,
        gradients=grad_bytes,
        optimizer_state=opt_bytes,
        batch_per_sample=per_sample,
        activations=_envelope(saved),
        workspace=_envelope(work),
        checkpointed_peak=_envelope(ckpt),
    )


def _max_batch(cal: _Calibration, target: int) -> int | None:
    """The largest batch whose predicted peak fits ``target`` (the peak grows with the
    batch); None when batch 1 does not fit."""
    if cal.peak(1) > target:
        return None
    lo, hi = 1, 2
    while cal.peak(hi) <= target and hi < 2**24:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cal.peak(mid) <= target else (lo, mid)
    return lo


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def _recommend(spec, cal, batch, peak, target) -> list[Recommendation]:
    over = target is not None and peak > target
    recs, ckpt = [], cal.checkpointed_peak(batch)
    if peak > ckpt and (cal.activations(batch) + cal.workspace(batch) > peak / 2 or over):
        recs.append(Recommendation("gradient_checkpointing",
            f"checkpoint the encoder/decoder blocks (torch.utils.checkpoint): peak {_mib(ckpt)} "
            f"instead of {_mib(peak)} (fitted on measured checkpointed steps), at the cost of "
            "recomputing the blocks' forward in backward", peak - ckpt))  # fmt: skip
    if spec.precision == "fp32":
        halved = (cal.activations(batch) + cal.batch_per_sample * batch) // 2
        recs.append(Recommendation("mixed_precision", "train under bf16 autocast: activations "
            f"and batch roughly halved, about {_mib(halved)} less (the convolution workspace "
            "under bf16 depends on the CPU: measure it with precision bf16)", halved))  # fmt: skip
    fit = _max_batch(cal, target) if over else None
    if over and fit is None:
        recs.append(Recommendation("no_batch_fits",
            f"even batch 1 needs {_mib(cal.peak(1))} > target {_mib(target)}: reduce the input "
            "or network size, checkpoint, use mixed precision", peak - cal.peak(1)))  # fmt: skip
    elif over:
        recs.append(Recommendation("smaller_batch",
            f"batch {fit} is the largest that fits {_mib(target)} (predicted peak "
            f"{_mib(cal.peak(fit))}); keep the effective batch with {math.ceil(batch / fit)} "
            "gradient-accumulation steps", peak - cal.peak(fit), batch_size=fit))  # fmt: skip
    return recs


def analyze_memory(
    *, network: str = "coarse", size: str = "base", input_hw: tuple[int, int] | None = None,
    batch_size: int, optimizer: str = "adamw", precision: str = "fp32", device: str = "cpu",
    target_bytes: int | None = None, measure: bool = False, arch: str = "mahtnet",
    loss: str = "ce",
) -> MemoryReport:  # fmt: skip
    """Predicted training-step peak of an engine network and its breakdown; see the
    module docstring. ``measure=True`` also runs the step at ``batch_size`` for real."""
    _check_positive("batch_size", batch_size)
    spec = _spec(network, size, input_hw, optimizer, precision, device, arch, loss)
    if target_bytes is not None:
        _check_positive("target_bytes", target_bytes)
    cal = _calibrate(spec)
    peak = cal.peak(batch_size)
    b = batch_size
    breakdown = MemoryBreakdown(
        cal.parameters, cal.gradients, cal.optimizer_state, cal.activations(b),
        cal.batch_per_sample * b, cal.workspace(b), peak,
    )  # fmt: skip
    return MemoryReport(
        config=_config(spec).as_dict(), input_hw=spec.input_hw, batch_size=b,
        optimizer=optimizer, precision=precision, device=spec.device, breakdown=breakdown,
        per_batch={n: cal.peak(n) for n in BATCHES}, target_bytes=target_bytes,
        fits=None if target_bytes is None else peak <= target_bytes,
        max_batch_that_fits=None if target_bytes is None else _max_batch(cal, target_bytes),
        recommendations=tuple(_recommend(spec, cal, b, peak, target_bytes)),
        measured_peak=_probe(spec, b)[0] if measure else None,
    )  # fmt: skip
