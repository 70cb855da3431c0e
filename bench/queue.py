"""Review queue bench: p50/p95 server time of the queue page and of "next case" (claim)
with 100,000 studies and 10,000 open tasks, under N concurrent reviewers (processes).

Usage (PostgreSQL must run; uses its own database, recreated each run):

    DJANGO_SETTINGS_MODULE=mahtqa.settings.test \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mahtqa_bench_queue \
    python bench/queue.py --reviewers 20 --requests 25

"Server time" is the time Django takes to answer one request in-process (middleware,
view, queries, template), measured around ``Client.get/post``: no network, no browser.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib's ``queue``: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mahtqa_bench_queue")


def _setup_db(n_studies: int, n_tasks: int, reviewers: int) -> list[str]:
    from bench._benchdb import database_fresh

    database_fresh()
    from apps.accounts.choices import Role
    from tests.clinical.review_factories import seed_scale
    from tests.factories import UserFactory

    t0 = time.perf_counter()
    seed_scale(n_studies=n_studies, n_tasks=n_tasks)
    print(f"seeded {n_studies} studies, {n_tasks} open tasks in {time.perf_counter() - t0:.1f} s")
    return [UserFactory(role=Role.RADIOLOGIST).username for _ in range(reviewers)]


def _reviewer(args) -> dict[str, list[float]]:
    username, n_requests, start_at = args
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from apps.accounts.models import User
    from apps.clinical.choices import TaskStatus
    from apps.clinical.models import ReviewTask

    client = Client()
    client.force_login(User.objects.get(username=username))
    client.get("/clinical/queue/")  # warm up templates and the connection
    out: dict[str, list[float]] = {"queue": [], "claim": []}
    while time.time() < start_at:
        time.sleep(0.005)
    for _ in range(n_requests):
        t0 = time.perf_counter()
        r = client.get("/clinical/queue/")
        out["queue"].append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
        t0 = time.perf_counter()
        r = client.post("/clinical/queue/next/")
        out["claim"].append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 302
        # finish the claimed case (outside the timing) so the next claim is a new one
        ReviewTask.objects.filter(claimed_by__username=username, status=TaskStatus.CLAIMED).update(
            status=TaskStatus.DONE
        )
    connection.close()
    return out


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="per reviewer, of each kind")
    a = parser.parse_args()
    users = _setup_db(a.studies, a.tasks, a.reviewers)
    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("spawn")
    start_at = time.time() + 8
    with ctx.Pool(a.reviewers) as pool:
        results = pool.map(_reviewer, [(u, a.requests, start_at) for u in users])
    print(f"reviewers={a.reviewers} requests/reviewer={a.requests} cpus={os.cpu_count()}")
    for kind in ("queue", "claim"):
        values = [v for r in results for v in r[kind]]
        print(
            f"{kind:6s} n={len(values)} p50={statistics.median(values):.1f} ms "
            f"p95={_pct(values, 95):.1f} ms max={max(values):.1f} ms"
        )


if __name__ == "__main__":
    main()
