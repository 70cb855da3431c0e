"""Report a training run to MAHT-QA from any training script (standard library only)::

    from mahtqa.reporting import training_run

    with training_run("coarse v2", params={"lr": 1e-3}, dataset_version=12) as run:
        for step in range(steps):
            ...
            run.log_metrics(step=step, train_loss=loss, lr=lr)
        run.set_artifact(weights_path="var/models/mahtnet.pt")  # registered when the run ends

``log_metrics`` only appends to a buffer: a background thread sends batches every
``flush_every_s`` seconds (and re-sends what failed; the server stores a row sent twice
once). Nothing here raises into the training script: a server that is down is logged
once and the run goes on. Leaving the block normally finishes the run; an exception
marks it failed (``KeyboardInterrupt``: aborted) and is re-raised. ``MAHTQA_URL`` and
``MAHTQA_TOKEN`` (a token with ``report_training``) or ``url=`` / ``token=``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

_log = logging.getLogger("mahtqa.reporting")
MAX_BUFFER = 200_000
MAX_BATCH = 2000


def _post(
    base: str, token: str, path: str, body: Mapping[str, Any], timeout: float
) -> dict[str, Any]:
    if not base.startswith(("http://", "https://")):
        raise ValueError("MAHTQA_URL must be an http(s) URL.")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{base}{path}",
        data=json.dumps(body, default=str).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read().decode() or "{}")


class TrainingRun:
    """One run on the server; see the module docstring. ``id`` is None when the server
    could not be reached at the start (then every call is a cheap no-op)."""

    def __init__(
        self,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        dataset_version: Any = None,
        url: str | None = None,
        token: str | None = None,
        flush_every_s: float = 2.0,
        timeout: float = 5.0,
    ) -> None:
        self.name, self.params, self.dataset_version = name, dict(params or {}), dataset_version
        self.base = (url or os.environ.get("MAHTQA_URL", "")).rstrip("/")
        self.token = token or os.environ.get("MAHTQA_TOKEN", "")
        self.flush_every_s, self.timeout = flush_every_s, timeout
        self.id: int | None = None
        self.sent = 0
        self.artifact: dict[str, str] = {}
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    def _warn(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            detail = ""
            if isinstance(exc, urllib.error.HTTPError):
                try:
                    code = json.loads(exc.read().decode() or "{}").get("code", "")
                except (ValueError, OSError):
                    code = ""
                detail = f" HTTP {exc.code} {code}".rstrip()
            _log.warning(
                "training run %s: %s failed (%s%s); training goes on",
                self.name,
                what,
                type(exc).__name__,
                detail,
            )
            self._warned = True

    def start(self) -> TrainingRun:
        from mahtqa.reporting import capture_environment

        try:
            if not self.base or not self.token:
                raise RuntimeError("MAHTQA_URL and MAHTQA_TOKEN are not set")
            body = {"name": self.name, "params": self.params, "environment": capture_environment()}
            if self.dataset_version not in (None, ""):
                body["dataset_version"] = str(self.dataset_version)
            self.id = int(_post(self.base, self.token, "/api/v1/runs/", body, self.timeout)["id"])
        except Exception as exc:  # never into the training script
            self._warn("start", exc)
            return self
        self._thread = threading.Thread(target=self._loop, name="mahtqa-run", daemon=True)
        self._thread.start()
        return self

    def log_metrics(self, *, step: int, **values: float) -> None:
        """Buffer one row; non-finite values are kept (they are evidence of an explosion)."""
        if self.id is None:
            return
        row: dict[str, Any] = {"step": int(step)}
        for key, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            # JSON has no NaN / inf: sent as the strings the server maps back to non-finite
            row[key] = (
                number
                if math.isfinite(number)
                else ("nan" if math.isnan(number) else "inf" if number > 0 else "-inf")
            )
        with self._lock:
            self._rows.append(row)
            if len(self._rows) > MAX_BUFFER:  # the server is away for long: keep the newest
                del self._rows[: len(self._rows) - MAX_BUFFER]
        if len(self._rows) >= MAX_BATCH:
            self._wake.set()

    def set_artifact(
        self, *, weights_path: str, model_name: str = "", model_version: str = ""
    ) -> None:
        """Weights to register as a model version when the run finishes."""
        self.artifact = {
            "weights_path": str(weights_path),
            "model_name": model_name,
            "model_version": model_version,
        }

    def _flush(self) -> bool:
        with self._lock:
            batch = self._rows[:MAX_BATCH]
        if not batch:
            return True
        try:
            _post(
                self.base,
                self.token,
                f"/api/v1/runs/{self.id}/metrics/",
                {"rows": batch},
                self.timeout,
            )
        except Exception as exc:
            self._warn("sending metrics", exc)
            return False
        with self._lock:
            del self._rows[: len(batch)]
        self.sent += len(batch)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_every_s)
            self._wake.clear()
            while self._rows and self._flush():
                pass

    def finish(self, *, status: str = "finished", error: str = "", wait_s: float = 30.0) -> None:
        if self.id is None:
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=wait_s)
        while self._rows and self._flush():
            pass
        try:
            _post(
                self.base,
                self.token,
                f"/api/v1/runs/{self.id}/finish/",
                {"status": status, "error": error[:500], **self.artifact},
                self.timeout,
            )
        except Exception as exc:
            self._warn("finish", exc)


@contextlib.contextmanager
def training_run(name: str, **kwargs: Any) -> Iterator[TrainingRun]:
    """A :class:`TrainingRun` that finishes when the block ends (see the module docstring)."""
    run = TrainingRun(name, **kwargs).start()
    try:
        yield run
    except KeyboardInterrupt:
        run.finish(status="aborted", error="KeyboardInterrupt")
        raise
    except BaseException as exc:
        run.finish(status="failed", error=f"{type(exc).__name__}")
        raise
    else:
        run.finish(status="finished")
