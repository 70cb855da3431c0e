"""The embedded default's broker (SQLite via apps.core.broker.Transport) under a burst.

Runs the dev settings for real: a migrated SQLite database, the serverless
broker, and a real worker process. Every task of the burst must finish.
"""

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from celery import Celery

from tests.conftest import REPO_ROOT, wait_until, worker_start, worker_stop

BURST = 50


@pytest.mark.worker
@pytest.mark.slow
def test_burst_through_embedded_broker_all_finish(tmp_path, monkeypatch):
    db_path = tmp_path / "db.sqlite3"
    broker_url = f"sqlite:///{tmp_path / 'broker.sqlite'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mahtqa.settings.dev",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "CELERY_BROKER_URL": broker_url,
        "MAHTQA_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO_ROOT, env=env, check=True
    )
    proc, _ = worker_start(env=env, log_path=tmp_path / "worker.log")
    try:
        # Celery lets $CELERY_BROKER_URL win over broker=..., so set both.
        monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
        producer = Celery("producer", broker=broker_url, set_as_current=False)
        producer.conf.broker_transport = "apps.core.broker:Transport"
        producer.conf.broker_transport_options = {"connect_args": {"timeout": 30}}
        start = time.perf_counter()
        for i in range(BURST):
            producer.send_task(
                "apps.monitoring.tasks.ping", kwargs={"source": f"burst-{i}"}, queue="default"
            )

        def done() -> int:
            with sqlite3.connect(db_path, timeout=30) as conn:
                return conn.execute("SELECT COUNT(*) FROM monitoring_heartbeat").fetchone()[0]

        finished = wait_until(lambda: done() >= BURST, timeout=180, interval=0.25)
        elapsed = time.perf_counter() - start
        log = (tmp_path / "worker.log").read_text()
        assert finished, f"{done()}/{BURST} finished\n{log}"
        assert proc.poll() is None, log
        assert "Unrecoverable error" not in log
        print(f"\n{BURST} tasks through the embedded broker in {elapsed:.1f} s")
    finally:
        worker_stop(proc)
