"""A private Redis server (killed and restarted by fault tests) and a producer app on it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis
from celery import Celery
from django.conf import settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real ``redis-server`` on loopback, no persistence (like the CI machine's)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def producer(private_redis) -> Celery:
    """A Celery app like the project's, publishing to the private Redis."""
    app = Celery("outbox-test", broker=private_redis.url, set_as_current=False)
    app.conf.update(
        task_routes=settings.CELERY_TASK_ROUTES, task_queues=settings.CELERY_TASK_QUEUES,
        task_default_queue="default", broker_connection_timeout=1,
        broker_transport_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        broker_connection_retry=False,
    )  # fmt: skip
    yield app
    app.close()
