"""Pipeline overhead: N radiographs through the API to a live Celery worker.

    python bench/pipeline.py --n 12

Uses PostgreSQL (database ``mahtqa_bench``, created and migrated here) and Redis on
localhost, the real API view (in-process test client), and a real worker process.
Prints per-stage times and the ratio of worker time per study to the bare engine
call on the same pixels in one process; asserts the ratio is at most 1.20.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module (torch needs it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
DB = "mahtqa_bench"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.dev")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB}")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("MAHTQA_VAR_DIR", str(ROOT / "var" / "bench"))
TARGET_RATIO = 1.20


def _ensure_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            c.execute(f'CREATE DATABASE "{DB}"')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["MAHTQA_NUM_THREADS"] = str(args.threads)
    _ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    from rest_framework.test import APIClient

    from apps.accounts.services import api_client_create
    from apps.clinical.models import Prediction, Study
    from apps.models.loader import predictor_for
    from apps.models.services import model_version_bundled_register
    from mahtqa.engine.phantoms import phantom_dicom
    from mahtqa.imaging.dicom import decode_radiograph

    Study.objects.all().delete()
    mv, _, _ = model_version_bundled_register(
        weights_file=ROOT / "mahtqa/engine/bundled/mahtnet-v1.pt"
    )
    user, _, key = api_client_create(name=f"bench-{time.time_ns()}")
    http = APIClient(SERVER_NAME="localhost")
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    files = [phantom_dicom(seed=1000 + i)[0] for i in range(args.n + 1)]

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mahtqa",
            "worker",
            "-Q",
            "inference,default",
            "-c",
            "1",
            "--pool",
            "prefork",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:

        def submit_and_wait(batch):
            ids = []
            for data in batch:
                resp = http.post("/api/v1/studies/", data=data, content_type="application/dicom")
                assert resp.status_code == 202, resp.content[:300]
                ids.append(resp.json()["id"])
            deadline = time.time() + 60 + 10 * len(batch)
            while time.time() < deadline:
                open_ = Study.objects.filter(public_id__in=ids, status__in=["queued", "processing"])
                if not open_.exists():
                    return ids
                time.sleep(0.2)
            raise SystemExit("worker did not finish in time")

        submit_and_wait(files[:1])  # warm-up: model load
        ids = submit_and_wait(files[1:])
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    studies = list(Study.objects.filter(public_id__in=ids))
    assert all(s.status in ("released", "in_review") for s in studies), [s.status for s in studies]
    preds = {p.study_id: p for p in Prediction.objects.filter(study__in=studies)}
    stage = {
        k: [] for k in ("receive", "queue_wait", "decode", "inference", "postprocess", "worker")
    }
    for s in studies:
        t = preds[s.pk].timings_ms
        stage["receive"].append(s.receive_ms)
        stage["queue_wait"].append(t["queue_wait"])
        for k in ("decode", "inference", "postprocess"):
            stage[k].append(t[k])
        stage["worker"].append((s.finished_at - s.started_at).total_seconds() * 1000)

    predictor = predictor_for(mv)
    bare = []
    for data in files[1:]:
        pixels = decode_radiograph(data).pixels
        t0 = time.perf_counter()
        predictor.predict(pixels, spacing_mm=(0.3, 0.3023))
        bare.append((time.perf_counter() - t0) * 1000)

    print(f"{len(studies)} studies, model {mv}, {args.threads} threads\n")
    print("| stage | median ms | mean ms |")
    print("|---|---|---|")
    for k, v in stage.items():
        print(f"| {k} | {statistics.median(v):.1f} | {statistics.mean(v):.1f} |")
    print(
        f"| bare engine call (same pixels, one process) | {statistics.median(bare):.1f} "
        f"| {statistics.mean(bare):.1f} |"
    )
    ratio = statistics.median(stage["worker"]) / statistics.median(bare)
    print(f"\nworker time per study / bare engine call = {ratio:.3f} (target <= {TARGET_RATIO})")
    assert ratio <= TARGET_RATIO, "pipeline overhead above 20 %"


if __name__ == "__main__":
    main()
