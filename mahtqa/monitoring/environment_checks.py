"""Environment checks of the machine and its torch: python, torch, device, cuda, gpu, ram.

Each returns a :class:`Check`; ``fix`` is the command (or step) to run. Framework-free.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mahtqa.monitoring.environment_facts import TorchFacts, version_tuple

GREEN, AMBER, RED = "green", "amber", "red"
MIN_PYTHON = (3, 11)
GIB = 1024**3
CUDA_WHEEL_INDEX = "https://download.pytorch.org/whl/cu128"


@dataclass(frozen=True)
class Check:
    code: str
    status: str  # green | amber | red
    message: str
    fix: str = ""  # the command (or step) that fixes it; empty when green
    value: float | str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Thresholds:
    ram_amber_gb: float = 2.0  # available RAM below this: amber; below red_gb: red
    ram_red_gb: float = 0.5
    disk_amber_gb: float = 5.0  # free space below this: amber; below red_gb: red
    disk_red_gb: float = 1.0
    storage_probe_mb: float = 4.0
    storage_amber_mb_s: float = 10.0  # write throughput (with fsync) below this: amber
    database_amber_ms: float = 100.0
    broker_amber_ms: float = 500.0
    gpu_memory_amber_pct: float = 95.0


def check_python(*, version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    text = ".".join(map(str, version))
    if tuple(version[:2]) < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        return Check(
            "python",
            RED,
            f"Python {text} is older than {need}",
            f"install Python {need}+ and recreate the venv: make install",
            text,
        )
    return Check("python", GREEN, f"Python {text}", value=text)


def check_torch(*, torch: TorchFacts, pin: str | None) -> Check:
    if torch.version is None:
        return Check(
            "torch",
            RED,
            f"torch does not import ({torch.error})",
            f"pip install torch=={pin or '<pinned version>'}",
        )
    build = f"CUDA {torch.cuda} build" if torch.cuda else "CPU-only build"
    if pin and torch.version.split("+")[0] != pin.split("+")[0]:
        return Check(
            "torch",
            RED,
            f"torch {torch.version} ({build}), pinned {pin}",
            f"pip install torch=={pin}",
            torch.version,
        )
    return Check("torch", GREEN, f"torch {torch.version} ({build})", value=torch.version)


def check_device(*, requested: str, torch: TorchFacts, pin: str | None = None) -> Check:
    """MAHTQA_DEVICE against what the installed torch can do."""
    req = (requested or "").strip().lower()
    kind, _, index = req.partition(":")
    if kind == "cpu" and not index:
        note = " (a CUDA device is available)" if torch.cuda_available else ""
        return Check("device", GREEN, f"MAHTQA_DEVICE=cpu{note}", value=req)
    if kind != "cuda" or (index and not index.isdigit()):
        return Check(
            "device",
            RED,
            f"MAHTQA_DEVICE={requested!r} is not a device we run on",
            "set MAHTQA_DEVICE=cpu (or cuda, cuda:N on a GPU worker)",
            req,
        )
    if torch.version is None:
        return Check(
            "device",
            RED,
            "MAHTQA_DEVICE asks for CUDA but torch does not import",
            f"pip install torch=={pin or '<pinned>'} --index-url {CUDA_WHEEL_INDEX}",
            req,
        )
    if not torch.cuda:
        return Check(
            "device",
            RED,
            f"MAHTQA_DEVICE={req} but torch {torch.version} is the CPU-only build",
            f"set MAHTQA_DEVICE=cpu, or install a CUDA build of torch: pip install "
            f"torch=={pin or torch.version.split('+')[0]} --index-url {CUDA_WHEEL_INDEX}",
            req,
        )
    if not torch.cuda_available:
        return Check(
            "device",
            RED,
            f"MAHTQA_DEVICE={req}: CUDA build {torch.cuda} but no CUDA device visible",
            "nvidia-smi  # GPU visible? then check CUDA_VISIBLE_DEVICES and the driver "
            "(sudo nvidia-smi -pm 1)",
            req,
        )
    if index and int(index) >= torch.device_count:
        return Check(
            "device",
            RED,
            f"MAHTQA_DEVICE={req} but {torch.device_count} device(s)",
            f"set MAHTQA_DEVICE=cuda:{max(torch.device_count - 1, 0)}",
            req,
        )
    return Check("device", GREEN, f"MAHTQA_DEVICE={req} on CUDA {torch.cuda}", value=req)


def check_cuda(
    *, requested: str, torch: TorchFacts, driver_cuda: str | None, pin: str | None = None
) -> Check:
    """The torch build's CUDA against the highest the driver supports."""
    wants_cuda = (requested or "").lower().startswith("cuda")
    if not torch.cuda:
        if not wants_cuda:
            return Check("cuda", GREEN, "CPU-only torch build: no CUDA used")
        version = pin or (torch.version or "").split("+")[0] or "<pinned>"
        return Check(
            "cuda",
            RED,
            f"MAHTQA_DEVICE={requested} needs a CUDA build of torch; this one has no CUDA",
            f"pip install torch=={version} --index-url {CUDA_WHEEL_INDEX}  # then: nvidia-smi",
        )
    if driver_cuda is None:
        status = RED if wants_cuda else AMBER
        return Check(
            "cuda",
            status,
            f"torch built for CUDA {torch.cuda}; no NVIDIA driver found",
            "install the NVIDIA driver, then check with: nvidia-smi",
            torch.cuda,
        )
    if version_tuple(torch.cuda)[:2] > version_tuple(driver_cuda)[:2]:
        return Check(
            "cuda",
            RED if wants_cuda else AMBER,
            f"torch needs CUDA {torch.cuda}; the driver supports up to {driver_cuda}",
            "upgrade the NVIDIA driver, or install a torch build for CUDA "
            f"<= {driver_cuda} (pip install torch --index-url "
            f"https://download.pytorch.org/whl/cu{driver_cuda.replace('.', '')})",
            torch.cuda,
        )
    return Check(
        "cuda", GREEN, f"CUDA {torch.cuda} (driver supports {driver_cuda})", value=torch.cuda
    )


def check_gpu(*, requested: str, gpu: Mapping[str, Any], thresholds: Thresholds) -> Check:
    wants_cuda = (requested or "").lower().startswith("cuda")
    gpus = gpu.get("gpus") or []
    if not gpus:
        if not wants_cuda:
            return Check("gpu", GREEN, "no GPU (CPU deployment)", value=0)
        why = gpu.get("error") or (
            "nvidia-smi not found" if not gpu.get("smi") else "no GPU listed"
        )
        return Check(
            "gpu",
            RED,
            f"MAHTQA_DEVICE={requested} but no GPU is visible ({why})",
            "nvidia-smi  # then: sudo nvidia-smi -pm 1; export CUDA_VISIBLE_DEVICES=0",
            0,
        )
    parts, status = [], GREEN
    for g in gpus:
        used, total, busy = g["memory_used_mb"], g["memory_total_mb"], g["utilization_pct"]
        used_pct = 100.0 * used / total if used is not None and total else 0.0
        parts.append(f"{g['name']} {_n(used)}/{_n(total)} MiB, {_n(busy)}% busy")
        if wants_cuda and used_pct >= thresholds.gpu_memory_amber_pct:
            status = AMBER
    fix = "nvidia-smi  # find the process holding GPU memory" if status == AMBER else ""
    return Check("gpu", status, f"driver {gpus[0]['driver']}: " + "; ".join(parts), fix, len(gpus))


def _n(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}"


def check_ram(*, available_bytes: float, total_bytes: float, thresholds: Thresholds) -> Check:
    gb = available_bytes / GIB
    msg = f"{gb:.1f} GiB of {total_bytes / GIB:.1f} GiB RAM available"
    if gb < thresholds.ram_red_gb or gb < thresholds.ram_amber_gb:
        status = RED if gb < thresholds.ram_red_gb else AMBER
        return Check(
            "ram",
            status,
            msg,
            "free memory: fewer worker processes "
            "(celery worker --concurrency N) or a larger machine",
            round(gb, 2),
        )
    return Check("ram", GREEN, msg, value=round(gb, 2))
