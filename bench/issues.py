"""Issue tracker at scale: N occurrences folding into M issues; board server time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mahtqa_bench \
        python bench/issues.py --occurrences 100000 --issues 1000

Uses PostgreSQL (the database is created if missing, then migrated; the issue
tables are emptied first). Ingestion goes through the real service
(``issue_report``: scrubbing, fingerprinting, folding; full context capture for
each new issue) and, for a sample, through the HTTP API (``POST /api/v1/issues/``
with a token, in-process Django test client). The board is then requested with
varied filters and sorts; server time is measured around the in-process request
(no network). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not bench/ itself on the path: sibling scripts (e.g. queue.py) would shadow the stdlib.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mahtqa_bench")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
# The per-token API rate limit (600/minute by default) would turn the API sample
# into a throttling test; the bench measures throughput, so it lifts the limit.
os.environ.setdefault("MAHTQA_API_THROTTLE", "1000000/minute")


def _ensure_database() -> None:
    from urllib.parse import urlparse

    import psycopg

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


FRAME = {"filename": "/srv/maht/mahtqa/engine/train.py", "lineno": 10, "function": "step"}


def payload(i: int, n_issues: int, rng: random.Random) -> dict:
    from apps.issues.choices import Category, Severity

    k = i % n_issues
    return {
        "title": f"Failure kind {k} at step {rng.randint(1, 10**6)} (0x{rng.getrandbits(32):x})",
        "category": Category.values[k % len(Category.values)],
        "severity": Severity.values[k % len(Severity.values)],
        "traces": [{"type": f"bench.Error{k}", "message": f"step {i}",
                    "frames": [{**FRAME, "function": f"step_{k}"}]}],
        "data_state": {"epoch": i // 1000, "batch": i % 1000},
        "system_metrics": {"memory_percent": 50.0},
    }  # fmt: skip


def _ingest(worker: int, workers: int, n: int, n_issues: int, reporter_id: int):
    from django.db import connection

    from apps.accounts.models import User
    from apps.issues.services import issue_report

    connection.close()  # a fresh connection per process
    reporter = User.objects.get(pk=reporter_id)
    rng = random.Random(worker)
    new_times, repeat_times = [], []
    for i in range(worker, n, workers):
        t0 = time.perf_counter()
        _, created = issue_report(**payload(i, n_issues, rng), reporter=reporter)
        (new_times if created else repeat_times).append(time.perf_counter() - t0)
    return new_times, repeat_times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--occurrences", type=int, default=100_000)
    parser.add_argument("--issues", type=int, default=1_000)
    parser.add_argument("--api-sample", type=int, default=2_000)
    parser.add_argument("--board-requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1, help="ingesting processes")
    args = parser.parse_args()

    _ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    from apps.accounts.choices import Role
    from apps.accounts.models import User
    from apps.accounts.services import api_token_create, user_role_set
    from apps.issues.models import Issue, IssueEvent, Notification, NotifyThrottle, Occurrence

    for model in (Occurrence, IssueEvent, Notification, NotifyThrottle, Issue):
        model.objects.all().delete()
    engineer, _ = User.objects.get_or_create(username="bench-eng")
    password = os.environ.get("BENCH_PASSWORD", "bench-" + os.urandom(8).hex())
    engineer.set_password(password)
    engineer.save()
    user_role_set(user=engineer, role=Role.ENGINEER)
    bot, _ = User.objects.get_or_create(username="bench-bot")
    user_role_set(user=bot, role=Role.API_CLIENT)
    _, key = api_token_create(user=bot, name="bench")

    n_service = args.occurrences - args.api_sample
    started = time.perf_counter()
    if args.workers > 1:
        import multiprocessing as mp

        connection.close()
        with mp.get_context("fork").Pool(args.workers) as pool:
            parts = pool.starmap(
                _ingest,
                [(w, args.workers, n_service, args.issues, bot.pk) for w in range(args.workers)],
            )
        new_times = [t for p in parts for t in p[0]]
        repeat_times = [t for p in parts for t in p[1]]
    else:
        new_times, repeat_times = _ingest(0, 1, n_service, args.issues, bot.pk)
    service_s = time.perf_counter() - started

    rng = random.Random(99)
    api = Client()
    api_times = []
    for i in range(n_service, args.occurrences):
        t0 = time.perf_counter()
        body = payload(i, args.issues, rng)
        response = api.post("/api/v1/issues/", body, content_type="application/json",
                            HTTP_AUTHORIZATION=f"Token {key}")  # fmt: skip
        api_times.append(time.perf_counter() - t0)
        assert response.status_code in (200, 201), response.content
    api_s = sum(api_times)

    assert Issue.objects.count() == args.issues, Issue.objects.count()
    assert Occurrence.objects.count() == args.occurrences

    web = Client()
    assert web.login(username="bench-eng", password=password)
    queries = [
        "", "status=all", "sort=-count", "sort=due", "category=training", "severity=critical",
        "overdue=1", "status=all&sort=-last_seen", "assignee=none", "status=all&page=5",
    ]  # fmt: skip
    board_times, query_counts = [], set()
    for r in range(args.board_requests):
        q = queries[r % len(queries)]
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            response = web.get(f"/issues/?{q}")
            board_times.append(time.perf_counter() - t0)
        assert response.status_code == 200
        query_counts.add(len(ctx.captured_queries))
    detail = Issue.objects.order_by("-occurrence_count").first()
    t0 = time.perf_counter()
    assert web.get(f"/issues/{detail.pk}/").status_code == 200
    detail_ms = (time.perf_counter() - t0) * 1000

    ms = lambda s: f"{s * 1000:.1f}"  # noqa: E731
    print("| measure | value |\n| --- | --- |")
    print(f"| ingesting processes | {args.workers} |")
    print(f"| occurrences / issues | {args.occurrences:,} / {Issue.objects.count():,} |")
    print(f"| service ingestion ({n_service:,} reports) | {n_service / service_s:,.0f} reports/s "
          f"({service_s:,.1f} s) |")  # fmt: skip
    print(f"| service: new issue p50 / p95 (ms) | {ms(statistics.median(new_times))} / "
          f"{ms(_pct(new_times, 0.95))} |")  # fmt: skip
    print(f"| service: repeat p50 / p95 (ms) | {ms(statistics.median(repeat_times))} / "
          f"{ms(_pct(repeat_times, 0.95))} |")  # fmt: skip
    print(
        f"| HTTP API ingestion ({args.api_sample:,} POSTs, in-process) | "
        f"{args.api_sample / api_s:,.0f} reports/s; p95 {ms(_pct(api_times, 0.95))} ms |"
    )
    print(
        f"| board p50 / p95 server time ({args.board_requests} requests) | "
        f"{ms(statistics.median(board_times))} / {ms(_pct(board_times, 0.95))} ms |"
    )
    print(f"| board queries per request | {sorted(query_counts)} |")
    print(
        f"| issue page, most frequent issue ({detail.occurrence_count:,} occurrences) | "
        f"{detail_ms:.1f} ms |"
    )


if __name__ == "__main__":
    main()
