"""Report problems to the MAHT-QA issue tracker from any Python process.

Framework-free (standard library only; psutil and torch are used when present),
so a plain training script can use it without Django::

    from mahtqa.reporting import report_exception
    try: train()
    except Exception: report_exception(category="training", severity="critical"); raise

or, for every ``logger.error(...)``/``logger.exception(...)``::

    logging.getLogger().addHandler(IssueReportHandler(category="training"))

The server is ``MAHTQA_URL`` (e.g. ``http://127.0.0.1:8000``) and the token
``MAHTQA_TOKEN`` (an API token holding ``accounts.report_issue``), or pass
``url=`` / ``token=``. Reporting never raises into the caller (unless
``raise_errors=True``): a tracker that is down must not kill a training run.

Everything sent is scrubbed of PHI here first (DICOM person names, e-mail
addresses, dates of birth, marked UIDs, PHI keys and any ``phi_values`` you
pass); the server scrubs again with the same functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import socket
import sys
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from mahtqa.phi import REDACTED, Scrubber, scrub_data, scrub_text

__all__ = [
    "REDACTED",
    "IssueReportHandler",
    "capture_environment",
    "capture_system_metrics",
    "exception_trace",
    "report",
    "report_exception",
    "scrub_data",
    "scrub_text",
    "training_run",
]

MAX_FRAMES = 30


# --- Traces --------------------------------------------------------------------


def exception_trace(exc: BaseException) -> list[dict[str, Any]]:
    """The chain of ``exc`` (causes first), each ``{type, message, frames}``.

    Frames are ``{filename, lineno, function, module}`` (the last MAX_FRAMES,
    innermost last). No local variables are captured.
    """
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < 5:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    traces = []
    for item in reversed(chain):
        frames = []
        for fs in traceback.extract_tb(item.__traceback__)[-MAX_FRAMES:]:
            frames.append(
                {
                    "filename": fs.filename,
                    "lineno": fs.lineno,
                    "function": fs.name,
                    "code": (fs.line or "")[:300],
                }
            )
        traces.append(
            {
                "type": f"{type(item).__module__}.{type(item).__qualname__}".removeprefix(
                    "builtins."
                ),
                "message": str(item)[:2000],
                "frames": frames,
            }
        )
    return traces


# --- Environment and metrics ------------------------------------------------------

_PACKAGES = (
    "torch", "torchvision", "numpy", "scipy", "opencv-python-headless", "pydicom",
    "django", "celery", "psutil",
)  # fmt: skip


def capture_environment() -> dict[str, Any]:
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "packages": packages,
    }
    torch = sys.modules.get("torch")
    if torch is None and "torch" in packages:
        try:
            import torch  # noqa: PLC0415 - optional, only when installed
        except Exception:  # noqa: BLE001
            torch = None
    if torch is not None:
        try:
            cuda = torch.cuda.is_available()
            env["torch"] = {
                "version": torch.__version__,
                "cuda_available": cuda,
                "cuda_version": torch.version.cuda,
                "cudnn_version": torch.backends.cudnn.version() if cuda else None,
                "num_threads": torch.get_num_threads(),
                "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                if cuda
                else [],
            }
        except Exception as exc:  # noqa: BLE001
            env["torch"] = {"error": type(exc).__name__}
    return env


def capture_system_metrics(path: str = ".") -> dict[str, Any]:
    metrics: dict[str, Any] = {"cpu_count": os.cpu_count()}
    with contextlib.suppress(AttributeError, OSError):
        metrics["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    try:
        import psutil  # noqa: PLC0415 - optional

        vm = psutil.virtual_memory()
        du = psutil.disk_usage(path)
        metrics.update(
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_total_mb=round(vm.total / 2**20),
            memory_used_mb=round((vm.total - vm.available) / 2**20),
            memory_percent=vm.percent,
            disk_total_gb=round(du.total / 2**30, 1),
            disk_used_gb=round(du.used / 2**30, 1),
            disk_percent=du.percent,
            process_rss_mb=round(psutil.Process().memory_info().rss / 2**20, 1),
        )
    except Exception:  # noqa: BLE001, S110 - metrics are best effort
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                metrics["gpu_memory"] = [
                    {
                        "device": i,
                        "allocated_mb": round(torch.cuda.memory_allocated(i) / 2**20, 1),
                        "reserved_mb": round(torch.cuda.memory_reserved(i) / 2**20, 1),
                        "total_mb": round(
                            torch.cuda.get_device_properties(i).total_memory / 2**20, 1
                        ),
                    }
                    for i in range(torch.cuda.device_count())
                ]
        except Exception:  # noqa: BLE001, S110
            pass
    return metrics


# --- Sending ----------------------------------------------------------------------


def build_payload(
    *,
    title: str,
    category: str,
    severity: str = "high",
    description: str = "",
    exc: BaseException | None = None,
    data_state: Mapping[str, Any] | None = None,
    configuration: Mapping[str, Any] | None = None,
    reproduction_steps: Iterable[str] = (),
    phi_values: Iterable[str] = (),
    links: Mapping[str, Any] | None = None,
    fingerprint: str = "",
) -> dict[str, Any]:
    scrubber = Scrubber(values=phi_values)
    payload: dict[str, Any] = {
        "title": scrubber.text(title)[:200],
        "category": category,
        "severity": severity,
        "description": scrubber.text(description),
        "reproduction_steps": [scrubber.text(s) for s in reproduction_steps],
        "environment": capture_environment(),
        "system_metrics": capture_system_metrics(),
        "data_state": scrubber.data(dict(data_state or {})),
        "configuration": scrubber.data(dict(configuration or {})),
    }
    if exc is not None:
        payload["traces"] = scrubber.data(exception_trace(exc))
    if fingerprint:
        payload["fingerprint"] = fingerprint
    for key, value in (links or {}).items():
        if key in ("study", "dataset_name", "model_version") and value:
            payload[key] = value
    return payload


def send(
    payload: Mapping[str, Any], *, url: str | None = None, token: str | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:  # fmt: skip
    """POST ``payload`` to ``/api/v1/issues/``; the decoded JSON answer (raises on errors)."""
    base = (url or os.environ.get("MAHTQA_URL", "")).rstrip("/")
    key = token or os.environ.get("MAHTQA_TOKEN", "")
    if not base or not key:
        raise RuntimeError("Set MAHTQA_URL and MAHTQA_TOKEN (or pass url= and token=).")
    if not base.startswith(("http://", "https://")):
        raise ValueError("MAHTQA_URL must be an http(s) URL.")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{base}/api/v1/issues/",
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read().decode() or "{}")


_log = logging.getLogger("mahtqa.reporting")


def report(
    *, url: str | None = None, token: str | None = None, timeout: float = 5.0,
    raise_errors: bool = False, **fields: Any,
) -> dict[str, Any] | None:  # fmt: skip
    """Build (see :func:`build_payload`) and send a report. None if it could not be sent."""
    try:
        return send(build_payload(**fields), url=url, token=token, timeout=timeout)
    except Exception as exc:
        if raise_errors:
            raise
        detail = ""
        if isinstance(exc, urllib.error.HTTPError):
            detail = f" HTTP {exc.code}"
        _log.warning("issue report not sent: %s%s", type(exc).__name__, detail)
        return None


def report_exception(
    exc: BaseException | None = None, *, category: str = "training", severity: str = "high",
    title: str | None = None, **fields: Any,
) -> dict[str, Any] | None:  # fmt: skip
    """Report ``exc`` (default: the exception being handled). Returns the server's answer."""
    if exc is None:
        exc = sys.exc_info()[1]
    if exc is None:
        raise ValueError("report_exception() needs an exception (or call it in an except block).")
    title = title or f"{type(exc).__name__}: {exc}"
    return report(title=title, category=category, severity=severity, exc=exc, **fields)


class IssueReportHandler(logging.Handler):
    """A logging handler filing ERROR (and worse) records as issues.

    Repeats of the same error fold into one issue on the server (fingerprint),
    so logging in a loop does not create thousands of issues.
    """

    def __init__(
        self, level: int = logging.ERROR, *, category: str = "training", severity: str = "high",
        url: str | None = None, token: str | None = None, phi_values: Iterable[str] = (),
        data_state: Mapping[str, Any] | None = None, timeout: float = 5.0,
    ) -> None:  # fmt: skip
        super().__init__(level)
        self.category = category
        self.severity = severity
        self.url = url
        self.token = token
        self.phi_values = list(phi_values)
        self.data_state = dict(data_state or {})
        self.timeout = timeout
        self._emitting = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._emitting or record.name == _log.name:
            return  # never report our own failures (no loops)
        self._emitting = True
        try:
            exc = record.exc_info[1] if record.exc_info else None
            message = record.getMessage()
            severity = "critical" if record.levelno >= logging.CRITICAL else self.severity
            report(
                url=self.url, token=self.token, timeout=self.timeout,
                title=message.splitlines()[0][:200] if message else record.name,
                description=message, category=self.category, severity=severity, exc=exc,
                phi_values=self.phi_values,
                data_state={**self.data_state, "logger": record.name, "level": record.levelname},
            )  # fmt: skip
        except Exception:  # noqa: BLE001
            self.handleError(record)
        finally:
            self._emitting = False


from mahtqa.reporting_runs import TrainingRun, training_run  # noqa: E402 - re-exported here

__all__ += ["TrainingRun"]
