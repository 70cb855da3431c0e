"""The door on the embedded default (SQLite, dev settings), the path ``make demo``
takes: the modality policy is read with raw SQL there too (SQLite hands a JSON column
back as text), and an instance of a modality the policy refuses is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = """
import json
from django.test import Client
from apps.accounts.services import api_client_create
from apps.clinical.services.policy import routing_policy_modalities
from mahtqa.imaging.write import write_cr
import numpy as np
_, _, key = api_client_create(name="demo-pacs")
client = Client(HTTP_AUTHORIZATION=f"Token {key}", HTTP_HOST="localhost")
pixels = (np.arange(96 * 128, dtype=np.uint16).reshape(96, 128) % 4096)
ok = client.post("/api/v1/studies/", data=write_cr(pixels), content_type="application/dicom")
mr = client.post(
    "/api/v1/studies/", data=write_cr(pixels, modality="MR"), content_type="application/dicom"
)
print(json.dumps({"modalities": list(routing_policy_modalities()), "ok": ok.status_code,
                  "mr": mr.status_code, "mr_code": mr.json()["code"]}))
"""


@pytest.mark.slow
def test_the_door_reads_the_policy_on_sqlite(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mahtqa.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": f"sqlite:///{tmp_path / 'broker.sqlite'}",
        "MAHTQA_VAR_DIR": str(tmp_path),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO_ROOT, env=env, check=True, timeout=120)
    done = subprocess.run(
        [*manage, "shell", "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {
        "modalities": ["CR", "DX"],
        "ok": 202,
        "mr": 400,
        "mr_code": "modality_not_allowed",
    }
