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
import re
import socket
import sys
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

__all__ = [
    "IssueReportHandler",
    "capture_environment",
    "capture_system_metrics",
    "exception_trace",
    "report",
    "report_exception",
    "scrub_data",
    "scrub_text",
]

REDACTED = "[REDACTED]"
MAX_FRAMES = 30
MAX_TEXT = 20_000

# --- PHI scrubbing ---------------------------------------------------------

# A DICOM PersonName: a token with a caret and at least one letter (``DOE^JANE``).
_PN_CHAR = r"[^\s^\"'<>=:,;()\[\]{}|]"
_PERSON_NAME_RE = re.compile(rf"{_PN_CHAR}*(?:\^{_PN_CHAR}*)+")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_DATE = r"\d{1,4}[-/. ]?\d{1,2}[-/. ]?\d{1,4}"
_DOB_RE = re.compile(
    rf"(?i)\b(dob|date[ _-]?of[ _-]?birth|birth[ _-]?date|patient'?s? ?birth ?date)"
    rf"(\W{{0,8}}(?:DA:\s*)?'?)({_DATE})"
)
# UIDs "where marked": a study/series/SOP instance UID named as such.
_UID_RE = re.compile(
    r"(?i)\b((?:study|series|sop|mediastoragesop)[ _-]?(?:instance)?[ _-]?uid)"
    r"(\W{0,8}(?:UI:\s*)?'?)"
    r"([0-9]+(?:\.[0-9]+){2,})"
)
# pydicom element reprs and key=value pairs naming a patient identifier.
_PATIENT_FIELD_RE = re.compile(
    r"(?i)\b(patient'?s?[ _-]?(?:name|id|address|telephone numbers|mother'?s? birth name)"
    r"|other patient (?:names|ids))\b(\s*(?:[A-Z]{2}:)?\s*[:=]?\s*'?)([^'\n,;)}\[\]]*)"
)
# Keys whose value is always PHI (compared lower-case, without separators).
PHI_KEYS = frozenset(
    {
        "patientname", "patientid", "patientbirthdate", "patientaddress", "patientsaddress",
        "patientsname", "patientsbirthdate", "otherpatientnames", "otherpatientids",
        "patientmothersbirthname", "patienttelephonenumbers", "referringphysicianname",
        "referringphysiciansname", "performingphysicianname", "operatorsname",
        "accessionnumber", "studyinstanceuid", "seriesinstanceuid", "sopinstanceuid",
        "mediastoragesopinstanceuid", "birthdate", "dateofbirth", "dob", "email",
    }
)  # fmt: skip


def _key_is_phi(key: Any) -> bool:
    return re.sub(r"[^a-z]", "", str(key).lower()) in PHI_KEYS


def _phi_patterns(phi_values: Iterable[str]) -> list[re.Pattern[str]]:
    tokens: set[str] = set()
    for value in phi_values:
        value = str(value).strip()
        if not value:
            continue
        tokens.add(value)
        for part in re.split(r"[\^\s,]+", value):
            if len(part) >= 2:
                tokens.add(part)
    # Longest first so a full value is replaced before its parts.
    return [
        re.compile(rf"(?i)(?<![A-Za-z0-9]){re.escape(t)}(?![A-Za-z0-9])")
        for t in sorted(tokens, key=len, reverse=True)
    ]


def _redact_field(m: re.Match[str]) -> str:
    if not m.group(3).strip():
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{REDACTED}"


def scrub_text(text: Any, phi_values: Iterable[str] = (), *, _patterns=None) -> str:
    """``text`` with PHI replaced by ``[REDACTED]``."""
    if text is None:
        return ""
    text = str(text)[:MAX_TEXT]
    patterns = _patterns if _patterns is not None else _phi_patterns(phi_values)
    text = _PATIENT_FIELD_RE.sub(_redact_field, text)
    for pattern in patterns:
        text = pattern.sub(REDACTED, text)
    text = _DOB_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _UID_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _EMAIL_RE.sub(REDACTED, text)
    if "^" in text:
        # Only tokens with a letter: traceback markers (``^^^^``) are not names.
        text = _PERSON_NAME_RE.sub(
            lambda m: REDACTED if any(c.isalpha() for c in m.group()) else m.group(), text
        )
    return text


def scrub_data(data: Any, phi_values: Iterable[str] = (), *, _patterns=None) -> Any:
    """A JSON-able copy of ``data`` with PHI keys redacted and every string scrubbed."""
    patterns = _patterns if _patterns is not None else _phi_patterns(phi_values)
    if isinstance(data, Mapping):
        return {
            scrub_text(k, _patterns=patterns): (
                REDACTED if _key_is_phi(k) else scrub_data(v, _patterns=patterns)
            )
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple, set, frozenset)):
        return [scrub_data(v, _patterns=patterns) for v in data]
    if data is None or isinstance(data, (bool, int, float)):
        return data
    return scrub_text(data, _patterns=patterns)


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
    patterns = _phi_patterns(phi_values)
    payload: dict[str, Any] = {
        "title": scrub_text(title, _patterns=patterns)[:200],
        "category": category,
        "severity": severity,
        "description": scrub_text(description, _patterns=patterns),
        "reproduction_steps": [scrub_text(s, _patterns=patterns) for s in reproduction_steps],
        "environment": capture_environment(),
        "system_metrics": capture_system_metrics(),
        "data_state": scrub_data(dict(data_state or {}), _patterns=patterns),
        "configuration": scrub_data(dict(configuration or {}), _patterns=patterns),
    }
    if exc is not None:
        payload["traces"] = scrub_data(exception_trace(exc), _patterns=patterns)
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
