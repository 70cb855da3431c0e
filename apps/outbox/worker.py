"""The dispatcher loop: a thread in every Celery worker that publishes due outbox rows.

Registered on the worker in ``mahtqa.celery``. Each round claims due rows
with ``SKIP LOCKED``, so any number of workers share the work without
publishing a row twice. Sleeps ``MAHTQA_OUTBOX_POLL_S`` between rounds, less
when a round was full. A database or broker outage only makes it wait.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)


def dispatch_forever(
    stop: threading.Event, *, poll_s: float, on_round: Any = None, dispatch: bool = True
) -> None:
    from django.db import close_old_connections, connection

    from apps.outbox.services import DispatchResult, outbox_dispatch

    backoff = poll_s
    while not stop.is_set():
        try:
            close_old_connections()
            result = outbox_dispatch(limit=200) if dispatch else DispatchResult()
            if on_round is not None:
                on_round()
            busy = result.published + result.republished >= 200
            backoff = poll_s
            stop.wait(0 if busy else poll_s)
        except Exception as exc:  # noqa: BLE001 - the database is down: wait and try again
            logger.warning("outbox dispatcher: %s; retrying in %.1f s", type(exc).__name__, backoff)
            connection.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


WORKER_KEY_ENV = "MAHTQA_WORKER_KEY"


def worker_key() -> str:
    """``hostname:main-pid`` of the worker this process belongs to (set by the main
    process before its pool forks, so pool children inherit it)."""
    return os.environ.get(WORKER_KEY_ENV, "")


def worker_key_set(nodename: str) -> None:
    """Called in the worker's main process at start (``celeryd_init``), before the fork."""
    os.environ[WORKER_KEY_ENV] = f"{nodename}:{os.getpid()}"


def _heartbeat_every(seconds: float) -> Any:
    last = [0.0]

    def beat() -> None:
        if time.monotonic() - last[0] >= seconds and worker_key():
            from apps.monitoring.services import worker_heartbeat_record

            worker_heartbeat_record(worker_key=worker_key())
            last[0] = time.monotonic()

    return beat


class OutboxDispatcher(bootsteps.StartStopStep):
    """Starts the dispatcher thread with the worker and stops it on shutdown.

    The thread also records this worker's heartbeat (``worker:hostname:pid``), which
    is how a study held by a worker that was killed is found within seconds."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        from django.conf import settings

        # The thread always beats; it publishes only when dispatching is on here (else
        # a separate `manage.py outbox_dispatch --loop` or beat's backstop publishes).
        dispatch = settings.MAHTQA_OUTBOX_DISPATCH_IN_WORKER
        poll_s = settings.MAHTQA_OUTBOX_POLL_S if dispatch else settings.MAHTQA_WORKER_HEARTBEAT_S
        beat = _heartbeat_every(settings.MAHTQA_WORKER_HEARTBEAT_S)
        self._thread = threading.Thread(
            target=dispatch_forever, args=(self._stop,),
            kwargs={"poll_s": poll_s, "on_round": beat, "dispatch": dispatch},
            name="outbox-dispatcher", daemon=True,
        )  # fmt: skip
        self._thread.start()
        logger.info("outbox thread started (dispatch=%s, every %.2f s)", dispatch, poll_s)

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
