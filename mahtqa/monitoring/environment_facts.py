"""Facts of the machine a check reads: the installed torch and the NVIDIA GPUs (framework-free)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TorchFacts:
    version: str | None  # None: torch does not import
    cuda: str | None = None  # torch.version.cuda: None on a CPU-only build
    cuda_available: bool = False
    device_count: int = 0
    error: str = ""

    @property
    def build(self) -> str:
        return "cuda" if self.cuda else "cpu"


@dataclass(frozen=True)
class GpuFacts:
    index: int
    name: str
    memory_total_mb: float | None  # None where the board reports "[N/A]"
    memory_used_mb: float | None
    utilization_pct: float | None
    driver: str


def torch_facts() -> TorchFacts:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return TorchFacts(version=None, error=type(exc).__name__)
    available = bool(torch.cuda.is_available())
    return TorchFacts(
        version=str(torch.__version__),
        cuda=torch.version.cuda,
        cuda_available=available,
        device_count=torch.cuda.device_count() if available else 0,
    )


_SMI_FIELDS = "index,name,memory.total,memory.used,utilization.gpu,driver_version"


def nvidia_smi_parse(text: str) -> list[GpuFacts]:
    """Rows of ``nvidia-smi --query-gpu=<_SMI_FIELDS> --format=csv,noheader,nounits``."""

    def num(s: str) -> float | None:
        try:
            return float(s)
        except ValueError:  # "[N/A]" on some boards
            return None

    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 6:
            continue
        gpus.append(
            GpuFacts(
                int(num(parts[0]) or 0),
                parts[1],
                num(parts[2]),
                num(parts[3]),
                num(parts[4]),
                parts[5],
            )
        )
    return gpus


def nvidia_smi_cuda_parse(text: str) -> str | None:
    """The highest CUDA version the driver supports, from plain ``nvidia-smi`` output."""
    marker = "CUDA Version:"
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split()[0].strip("|") or None


def gpu_facts(*, nvidia_smi: str | None, timeout_s: float = 10.0) -> dict[str, Any]:
    """``{"smi": path|None, "gpus": [...], "driver_cuda": str|None, "error": str}``."""
    smi = nvidia_smi or shutil.which("nvidia-smi")
    out: dict[str, Any] = {"smi": smi, "gpus": [], "driver_cuda": None, "error": ""}
    if not smi:
        return out
    try:
        query = subprocess.run(  # noqa: S603 - nvidia-smi, fixed arguments
            [smi, f"--query-gpu={_SMI_FIELDS}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
        plain = subprocess.run([smi], capture_output=True, text=True, timeout=timeout_s)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    out["gpus"] = [asdict(g) for g in nvidia_smi_parse(query.stdout)]
    out["driver_cuda"] = nvidia_smi_cuda_parse(plain.stdout)
    return out


def version_tuple(v: str | None) -> tuple[int, ...]:
    parts = []
    for p in (v or "").split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)
