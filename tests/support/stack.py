"""A live MAHT-QA stack for fault injection: gunicorn, a Celery worker and beat,
on this run's test database and a private Redis; each piece killable."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from django.db import connection

from tests.support.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    auth = (db["USER"] or "postgres") + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Response:
    status: int
    body: dict
    headers: dict


@dataclass
class Stack:
    redis: RedisServer
    concurrency: int = 2
    web_port: int = field(default_factory=_free_port)
    nodename: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:6]}@localhost")
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="faults-")))
    procs: dict = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ, "DJANGO_SETTINGS_MODULE": "mahtqa.settings.test",
            "DATABASE_URL": database_url(), "CELERY_BROKER_URL": self.redis.url,
            "PYTHONUNBUFFERED": "1", "MAHTQA_REQUEUE_EVERY_SECONDS": "2",
        }  # fmt: skip

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("a")
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs[name] = proc
        return proc

    # --- pieces ---------------------------------------------------------------------
    def start_web(self) -> None:
        bind = f"127.0.0.1:{self.web_port}"
        self._spawn("web", [sys.executable, "-m", "gunicorn", "mahtqa.wsgi", "-b", bind,
                            "-w", "2", "--timeout", "60"])  # fmt: skip
        self._wait(lambda: self.get("/healthz").status == 200, "web")

    def start_worker(self) -> None:
        self._spawn("worker", [
            sys.executable, "-m", "celery", "-A", "mahtqa", "worker", "-Q", "inference,default",
            "-c", str(self.concurrency), "--pool", "prefork", "-n", self.nodename, "-l", "info",
            "--without-mingle", "--without-gossip",
        ])  # fmt: skip
        self._wait(lambda: bool(self.worker_children()), "worker", timeout=90)

    def start_beat(self) -> None:
        schedule = self.logs / "beat-schedule"
        self._spawn("beat", [sys.executable, "-m", "celery", "-A", "mahtqa", "beat", "-l",
                             "info", "--schedule", str(schedule)])  # fmt: skip

    def start(self) -> Stack:
        self.start_web()
        self.start_worker()
        self.start_beat()
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    # --- faults ---------------------------------------------------------------------
    def worker_children(self) -> list[psutil.Process]:
        proc = self.procs.get("worker")
        if proc is None or proc.poll() is not None:
            return []
        try:
            return psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def kill_worker_child(self) -> bool:
        children = self.worker_children()
        busy = sorted(children, key=lambda c: c.cpu_percent(interval=None), reverse=True)
        if not busy:
            return False
        try:
            busy[0].kill()
        except psutil.NoSuchProcess:
            return False
        return True

    def kill_worker_main(self) -> None:
        proc = self.procs["worker"]
        proc.kill()  # SIGKILL to the main process only: its children notice and exit
        proc.wait(timeout=10)

    # --- client ---------------------------------------------------------------------
    def request(self, method: str, path: str, *, data: bytes | None = None,
                token: str = "", content_type: str = "") -> Response:  # fmt: skip
        headers = {"Authorization": f"Token {token}"} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - loopback
                raw, status, hdrs = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as exc:
            raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw[:200].decode(errors="replace")}
        return Response(status, body if isinstance(body, dict) else {"list": body}, hdrs)

    def get(self, path: str, **kw) -> Response:
        try:
            return self.request("GET", path, **kw)
        except OSError:
            return Response(0, {}, {})

    def submit(self, data: bytes, token: str) -> Response:
        return self.request("POST", "/api/v1/studies/", data=data, token=token,
                            content_type="application/dicom")  # fmt: skip

    def _wait(self, ok, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not start; logs in {self.logs}")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
