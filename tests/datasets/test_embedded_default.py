"""Dataset registration and validation on the embedded default (SQLite, dev settings),
through the real commands: the path ``make demo`` takes. On SQLite a validation step's
check and finding rows go through ``bulk_create`` (``apps.core.bulk.rows_insert``), not
PostgreSQL's COPY, so this is the test of that branch."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.datasets.conftest import ISBI_SPACING, copy_isbi, defect_outside, needs_isbi


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@needs_isbi
@pytest.mark.slow
def test_register_and_validate_on_sqlite_store_every_check_and_finding(tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_isbi(root / "three", ["001", "002", "003"])
    defect_outside(root / "three", "002")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mahtqa.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": f"sqlite:///{tmp_path / 'broker.sqlite'}",
        "MAHTQA_VAR_DIR": str(tmp_path),
        "MAHTQA_DATASET_ROOTS": str(root),
        "MAHTQA_DATASET_STORE": str(tmp_path / "store"),
    }
    _manage(env, "migrate", "-v0")
    out = _manage(
        env, "dataset_register", str(root / "three"), "--name", "three", "--spacing", ISBI_SPACING
    )
    version_id = out.strip().splitlines()[-1].strip()
    report = json.loads(_manage(env, "dataset_validate", version_id, "--inline", "--json"))
    assert report["summary"]["images"] == 3
    outside = [f for f in report["findings"] if f["code"] == "annotation_outside_image"]
    assert [(f["image"], f["landmark"], f["severity"]) for f in outside] == [("002", "S", "error")]
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        checks = db.execute("SELECT COUNT(*), SUM(readable) FROM datasets_imagecheck").fetchone()
        metrics = db.execute("SELECT metrics FROM datasets_imagecheck LIMIT 1").fetchone()[0]
    assert checks == (3, 3)
    assert json.loads(metrics)["contrast"] > 0.3  # a JSON column, stored as JSON
