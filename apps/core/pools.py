"""Thread pools that live as long as their process."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[tuple[int, str, int], ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def process_pool(*, name: str, workers: int) -> ThreadPoolExecutor:
    """This process's pool ``name`` of ``workers`` threads, made on first use and kept
    (its threads keep their thread-local buffers from call to call). Keyed by process:
    a pool inherited through a fork (gunicorn, Celery prefork) has no threads and would
    never run its work."""
    key = (os.getpid(), name, workers)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix=name)
    return pool
