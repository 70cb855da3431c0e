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

Several processes can feed one run (``scripts/train_bundled.sh`` trains its two networks
in parallel): ``python -m mahtqa.reporting_runs start NAME --data REF`` creates the run
and prints its id; each process attaches with ``run_id=`` (or ``MAHTQA_RUN_ID``, which
:func:`step_reporter` reads) and only sends metrics; ``... finish ID --weights PATH``
closes it and registers the weights. If the server refuses the weights (not found,
outside the model directory, version taken), the run is still closed, with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
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


def _error_code(exc: urllib.error.HTTPError) -> str:
    """The ``code`` of an API error body (read once; cached on the exception)."""
    if not hasattr(exc, "_mahtqa_code"):
        try:
            exc._mahtqa_code = json.loads(exc.read().decode() or "{}").get("code", "")
        except (ValueError, OSError, AttributeError):
            exc._mahtqa_code = ""
    return exc._mahtqa_code


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


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
        flush_every_s: float | None = None,
        timeout: float = 5.0,
        run_id: int | None = None,
    ) -> None:
        self.name, self.params, self.dataset_version = name, dict(params or {}), dataset_version
        self.base = (url or os.environ.get("MAHTQA_URL", "")).rstrip("/")
        self.token = token or os.environ.get("MAHTQA_TOKEN", "")
        if flush_every_s is None:
            flush_every_s = _env_float("MAHTQA_RUN_FLUSH_S", 2.0)
        self.flush_every_s, self.timeout = flush_every_s, timeout
        self.attach_to = run_id  # an existing run: only metrics are sent from here
        self.id: int | None = None
        self.sent = 0
        self.artifact: dict[str, str] = {}
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False
        self.finished: dict[str, Any] = {}  # the server's run after finish()

    def _warn(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            detail = ""
            if isinstance(exc, urllib.error.HTTPError):
                detail = f" HTTP {exc.code} {_error_code(exc)}".rstrip()
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
            if self.attach_to is not None:
                self.id = int(self.attach_to)
                self._thread = threading.Thread(target=self._loop, name="mahtqa-run", daemon=True)
                self._thread.start()
                return self
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

    def close(self, *, wait_s: float = 30.0) -> None:
        """Send what is buffered and stop the sender; the run stays open."""
        if self.id is None:
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=wait_s)
        while self._rows and self._flush():
            pass

    def finish(self, *, status: str = "finished", error: str = "", wait_s: float = 30.0) -> None:
        """Close the run on the server (registering the artifact, if one was set)."""
        if self.id is None:
            return
        self.close(wait_s=wait_s)
        path = f"/api/v1/runs/{self.id}/finish/"
        body = {"status": status, "error": error[:500]}
        try:
            self.finished = _post(
                self.base, self.token, path, {**body, **self.artifact}, self.timeout
            )
            return
        except urllib.error.HTTPError as exc:
            if not self.artifact or not 400 <= exc.code < 500:
                self._warn("finish", exc)
                return
            code = _error_code(exc)  # the weights were refused: close the run anyway
            self._warn("registering the weights", exc)
            body["error"] = "; ".join(filter(None, [f"weights not registered ({code})", error]))[
                :500
            ]
        except Exception as exc:
            self._warn("finish", exc)
            return
        try:
            self.finished = _post(self.base, self.token, path, body, self.timeout)
        except Exception as exc:
            self._warn("finish", exc)


@contextlib.contextmanager
def training_run(name: str, **kwargs: Any) -> Iterator[TrainingRun]:
    """A :class:`TrainingRun` that finishes when the block ends (see the module docstring)."""
    run = TrainingRun(name, **kwargs).start()
    if run.attach_to is not None:  # another process owns the run: send, never close
        try:
            yield run
        finally:
            run.close()
        return
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


@contextlib.contextmanager
def step_reporter(
    *, prefix: str = "", run_id: int | str | None = None, mm_per_px: float | None = None
) -> Iterator[Callable[[int, dict], None] | None]:
    """An ``on_step(step, metrics)`` hook (the engine trainer's) that sends each step's
    metrics to the run ``run_id`` (default ``MAHTQA_RUN_ID``), names prefixed with
    ``prefix``; with ``mm_per_px``, a "val_mre" in pixels is also sent as "val_mre_mm".
    Yields None (no hook: the trainer skips the extra validation work) without a run."""
    run_id = run_id if run_id not in (None, "") else os.environ.get("MAHTQA_RUN_ID", "")
    if not str(run_id).strip().isdigit():
        yield None
        return
    with training_run(prefix.rstrip("/_") or "run", run_id=int(run_id)) as run:

        def on_step(step: int, metrics: dict) -> None:
            values = dict(metrics)
            if mm_per_px and "val_mre" in values:
                values["val_mre_mm"] = float(values["val_mre"]) * mm_per_px
            run.log_metrics(step=step, **{f"{prefix}{k}": v for k, v in values.items()})

        yield on_step


def dataset_ref(data: str) -> str:
    """The dataset version an engine ``--data`` names: ``version:ID`` -> ID; a registered
    version's manifest -> its id; a plain folder -> "" (no registered version)."""
    if data.startswith("version:"):
        return data.split(":", 1)[1]
    path = Path(data)
    if path.is_file() and path.suffix == ".json":
        try:
            found = json.loads(path.read_text()).get("dataset_version") or {}
        except (ValueError, OSError, AttributeError):
            return ""
        return str(found.get("id", "")) if isinstance(found, dict) else ""
    return ""


def main(argv: list[str] | None = None) -> int:
    """``start NAME [--params JSON] [--data REF]`` prints the new run's id (nothing when
    the server is not configured or unreachable); ``finish ID [--status S] [--error E]
    [--weights PATH --model-name N --model-version V]`` closes it. Always exits 0."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m mahtqa.reporting_runs")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("name")
    start.add_argument("--params", default="{}", help="a JSON object")
    start.add_argument("--data", default="", help="an engine --data (version:ID, manifest)")
    finish = sub.add_parser("finish")
    finish.add_argument("run_id")
    finish.add_argument("--status", default="finished")
    finish.add_argument("--error", default="")
    finish.add_argument("--weights", default="")
    finish.add_argument("--model-name", default="")
    finish.add_argument("--model-version", default="")
    args = parser.parse_args(argv)
    if args.command == "start":
        try:
            params = json.loads(args.params)
        except ValueError:
            params = {"raw": args.params}
        run = TrainingRun(args.name, params=params, dataset_version=dataset_ref(args.data))
        run.start()
        run.close()
        if run.id is not None:
            print(run.id)
        return 0
    if not args.run_id.strip().isdigit():
        return 0  # no run was started (server away): nothing to close
    run = TrainingRun("finish", run_id=int(args.run_id)).start()
    if args.weights:
        weights = str(Path(args.weights).resolve())
        run.set_artifact(
            weights_path=weights, model_name=args.model_name, model_version=args.model_version
        )
    run.finish(status=args.status, error=args.error)
    if run.finished:
        mv = run.finished.get("model_version")
        print(f"run {run.id} {run.finished.get('status')}; model version {mv or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
