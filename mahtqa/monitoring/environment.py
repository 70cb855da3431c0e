"""Environment verification (the guide's phase 2): one worker's facts and checks.

Framework-free: everything a check needs is passed in (the requested device, the
requirements file, the model file and its registered sha256, the storage folders,
thresholds, and the database and broker probes as callables), so a test can craft any
failure. Each check returns a :class:`Check` whose ``fix`` is the command to run.

The codes (docs/operations.md, "Environment verification"): ``python``, ``torch``,
``device``, ``cuda``, ``gpu``, ``ram``, ``disk_<label>``, ``packages``, ``model``,
``storage_<label>``, ``database``, ``broker``.
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mahtqa.monitoring.environment_checks import (
    AMBER,
    GIB,
    GREEN,
    RED,
    Check,
    Thresholds,
    check_cuda,
    check_device,
    check_gpu,
    check_python,
    check_ram,
    check_torch,
)
from mahtqa.monitoring.environment_facts import GpuFacts, TorchFacts, gpu_facts, torch_facts
from mahtqa.monitoring.environment_files import (
    ModelRef,
    check_disk,
    check_model,
    check_packages,
    check_probe,
    check_storage,
    disk_volumes,
    sha256_file,
)
from mahtqa.monitoring.requirements import requirements_parse

__all__ = [
    "AMBER",
    "GREEN",
    "RED",
    "Check",
    "EnvironmentInputs",
    "EnvironmentReport",
    "GpuFacts",
    "ModelRef",
    "Thresholds",
    "TorchFacts",
    "environment_verify",
    "sha256_file",
    "worst",
]
_RANK = {GREEN: 0, AMBER: 1, RED: 2}


@dataclass
class EnvironmentInputs:
    device: str = "cpu"
    requirements: Path | None = None
    requirements_label: str = "requirements/base.txt"
    model: ModelRef | None = None
    model_error: str = ""  # the registry could not be read (exception class)
    storage_dirs: Mapping[str, Path] = field(default_factory=dict)  # write probe + disk
    disk_dirs: Mapping[str, Path] = field(default_factory=dict)  # disk only
    database_probe: Callable[[], None] | None = None
    broker_probe: Callable[[], None] | None = None
    database_fix: str = (
        'pg_isready -d "$DATABASE_URL"  # then: systemctl status postgresql; check DATABASE_URL'
    )
    broker_fix: str = (
        'redis-cli -u "$CELERY_BROKER_URL" ping  # then: systemctl status redis-server; '
        "check CELERY_BROKER_URL"
    )
    sha256_of: Callable[[Path], str] | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    nvidia_smi: str | None = None  # path of nvidia-smi; None: look it up on PATH
    torch: TorchFacts | None = None  # None: read from the installed torch


@dataclass
class EnvironmentReport:
    facts: dict[str, Any]
    checks: list[Check]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "facts": self.facts,
            "checks": [c.as_dict() for c in self.checks],
        }


def worst(statuses: Any) -> str:
    return max(statuses, key=_RANK.__getitem__, default=GREEN)


def environment_verify(inputs: EnvironmentInputs) -> EnvironmentReport:
    import psutil

    t = inputs.thresholds
    torch = inputs.torch or torch_facts()
    gpu = gpu_facts(nvidia_smi=inputs.nvidia_smi)
    pins = requirements_parse(inputs.requirements) if inputs.requirements else {}
    pin = pins.get("torch")
    mem = psutil.virtual_memory()
    checks = [
        check_python(),
        check_torch(torch=torch, pin=pin),
        check_device(requested=inputs.device, torch=torch, pin=pin),
        check_cuda(requested=inputs.device, torch=torch, driver_cuda=gpu["driver_cuda"], pin=pin),
        check_gpu(requested=inputs.device, gpu=gpu, thresholds=t),
        check_ram(available_bytes=mem.available, total_bytes=mem.total, thresholds=t),
        *(
            check_disk(label=k, path=p, also=also, thresholds=t)
            for k, p, also in disk_volumes({**inputs.storage_dirs, **inputs.disk_dirs})
        ),
        check_packages(pins=pins, label=inputs.requirements_label),
        check_model(
            model=inputs.model, sha256_of=inputs.sha256_of, lookup_error=inputs.model_error
        ),
        *(
            check_storage(label=k, directory=p, thresholds=t)
            for k, p in inputs.storage_dirs.items()
        ),
        check_probe(
            code="database",
            probe=inputs.database_probe,
            amber_ms=t.database_amber_ms,
            what="database",
            fix=inputs.database_fix,
        ),
        check_probe(
            code="broker",
            probe=inputs.broker_probe,
            amber_ms=t.broker_amber_ms,
            what="broker",
            fix=inputs.broker_fix,
        ),
    ]
    facts = {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.version,
        "torch_build": torch.build if torch.version else None,
        "torch_cuda": torch.cuda,
        "cuda_available": torch.cuda_available,
        "driver_cuda": gpu["driver_cuda"],
        "driver": gpu["gpus"][0]["driver"] if gpu["gpus"] else None,
        "gpus": gpu["gpus"],
        "device": inputs.device,
        "ram_total_gb": round(mem.total / GIB, 2),
        "ram_available_gb": round(mem.available / GIB, 2),
        "model": (
            {
                "name": inputs.model.name,
                "version": inputs.model.version,
                "path": str(inputs.model.path),
                "sha256": inputs.model.sha256,
            }
            if inputs.model
            else None
        ),
        "packages_pinned": len(pins),
    }
    return EnvironmentReport(facts=facts, checks=checks)
