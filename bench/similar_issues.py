"""Similar resolved issues: top-1 / top-3 accuracy on the labelled set, and cost at scale.

    python bench/similar_issues.py                  # the labelled set, framework-free
    python bench/similar_issues.py --noise 5000     # + 5,000 recombined resolved issues
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mahtqa_bench_similar \\
        python bench/similar_issues.py --db --noise 5000

The labelled set is ``tests/issues/data/similar_pairs.json``: 81 resolved issues (50
targets and 31 distractors sharing their vocabulary) and 50 new reports, each the same
root cause as one target in other words. A report is a hit at k when its target is among
the first k suggestions.

``--noise N`` adds N resolved issues recombined from the set (the title of one item, the
exception and message of a second, the frames and description of a third, ids shuffled):
near-misses by construction, to see how accuracy and time hold with thousands.

``--db``: the same through the services on PostgreSQL (the database is dropped and
recreated): the set is filed with ``issue_report`` and resolved with ``issue_triage``; the
noise is bulk-inserted as resolved issues with an occurrence each; each report is asked
with ``similar_resolved_find`` (one aggregate query to check the cached index, the
scoring, one query for the rows, one for notes). Index build and per-report time printed.
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
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from mahtqa.monitoring.similarity import IssueText, SimilarityIndex, rank_of  # noqa: E402
from tests.issues.data.similar_pairs import pairs_load, traces_of  # noqa: E402

ABLATIONS = {
    "all fields (default weights)": None,
    "title only": {"title": 1.0},
    "text bag only": {"text": 1.0},
    "without the text bag": {"title": 1.0, "exception": 1.0, "message": 1.0, "frames": 1.5},
    "exception + frames only": {"exception": 1.0, "frames": 1.0},
}


def _text(item: dict, key=None) -> IssueText:
    return IssueText(
        key=key, title=item["title"], exception_type=item["exception_type"],
        message=item["message"], traces=traces_of(item), description=item["description"],
    )  # fmt: skip


def _noise(resolved: list[dict], n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c = rng.sample(resolved, 3)
        frames = [
            f"{f.rsplit(':', 2)[0]}:{rng.randint(1, 900)}:{f.rsplit(':', 1)[1]}"
            for f in c["frames"]
        ]
        out.append({
            "key": f"noise-{i}", "category": a["category"], "severity": "medium",
            "title": f"{a['title']} (run {rng.randint(1000, 9999)})",
            "exception_type": b["exception_type"], "message": b["message"],
            "frames": frames, "description": c["description"],
            "resolution_note": "Recombined noise issue.",
        })  # fmt: skip
    return out


def _score(hits: list[int | None]) -> tuple[float, float]:
    n = len(hits)
    return (
        sum(1 for r in hits if r == 1) / n,
        sum(1 for r in hits if r is not None and r <= 3) / n,
    )


def bench_plain(data: dict, noise: list[dict]) -> None:
    resolved = data["resolved"] + noise
    print(f"\nframework-free: {len(resolved)} resolved issues, {len(data['reports'])} reports\n")
    print("| fields | top-1 | top-3 | index build ms | median query ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, weights in ABLATIONS.items():
        t0 = time.perf_counter()
        index = SimilarityIndex([_text(r, r["key"]) for r in resolved], weights=weights)
        build_ms = (time.perf_counter() - t0) * 1000
        hits, times = [], []
        for report in data["reports"]:
            t0 = time.perf_counter()
            matches = index.query(_text(report), limit=3, min_score=0.0)
            times.append((time.perf_counter() - t0) * 1000)
            hits.append(rank_of(matches, report["expected"]))
        top1, top3 = _score(hits)
        print(f"| {name} | {top1:.0%} | {top3:.0%} | {build_ms:.0f} | "
              f"{statistics.median(times):.2f} |")  # fmt: skip


def bench_db(data: dict, noise: list[dict]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.test")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mahtqa_bench_similar")
    from bench._benchdb import database_fresh

    database_fresh()
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.issues.models import Fingerprint, Issue, Occurrence
    from apps.issues.services import similar_resolved_find
    from apps.issues.services.similar import similar_index_get
    from tests.issues.data.similar_pairs import resolved_file

    actor = User.objects.create(username="bench-similar")
    t0 = time.perf_counter()
    ids = {item["key"]: resolved_file(item=item, actor=actor).pk for item in data["resolved"]}
    file_s = time.perf_counter() - t0
    now = timezone.now()
    for start in range(0, len(noise), 1000):
        chunk = noise[start : start + 1000]
        issues = Issue.objects.bulk_create([
            Issue(
                title=n["title"][:200], description=n["description"], category=n["category"],
                severity="medium", status="resolved", source="api", fingerprint=n["key"],
                exception_type=n["exception_type"], context={"error_traces": traces_of(n)},
                occurrence_count=1, first_seen_at=now, last_seen_at=now, sla_started_at=now,
                due_at=now, created_at=now, resolved_at=now, first_resolved_at=now,
                resolution_note=n["resolution_note"],
            )
            for n in chunk
        ])  # fmt: skip
        Fingerprint.objects.bulk_create([Fingerprint(value=i.fingerprint, issue=i) for i in issues])
        Occurrence.objects.bulk_create([
            Occurrence(issue=i, fingerprint=i.fingerprint, occurred_at=now,
                       message=n["message"], exception_type=n["exception_type"])
            for i, n in zip(issues, chunk, strict=True)
        ])  # fmt: skip
    t0 = time.perf_counter()
    index = similar_index_get()
    build_s = time.perf_counter() - t0
    hits, times = [], []
    for report in data["reports"]:
        t0 = time.perf_counter()
        found = similar_resolved_find(
            title=report["title"], description=report["description"],
            exception_type=report["exception_type"], message=report["message"],
            traces=traces_of(report), limit=3,
        )  # fmt: skip
        times.append((time.perf_counter() - t0) * 1000)
        ranked = [s.id for s in found]
        expected = ids[report["expected"]]
        hits.append(ranked.index(expected) + 1 if expected in ranked else None)
    top1, top3 = _score(hits)
    times.sort()
    # One more resolution: the next lookup rebuilds, tokenising only that issue again.
    resolved_file(item={**data["resolved"][0], "key": "one-more", "title": "One more"}, actor=actor)
    t0 = time.perf_counter()
    similar_index_get()
    rebuild_s = time.perf_counter() - t0
    print(f"\nPostgreSQL, through the services: {len(index)} resolved issues indexed\n")
    print("| top-1 | top-3 | filing the set s | first build s | rebuild after one more s "
          "| median ms | p90 ms |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {top1:.0%} | {top3:.0%} | {file_s:.1f} | {build_s:.2f} | {rebuild_s:.2f} | "
          f"{statistics.median(times):.1f} | {times[int(0.9 * (len(times) - 1))]:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--noise", type=int, default=0, help="recombined resolved issues added")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--db", action="store_true", help="through the services on PostgreSQL")
    args = parser.parse_args()
    data = pairs_load()
    noise = _noise(data["resolved"], args.noise, args.seed)
    if args.db:
        bench_db(data, noise)
    else:
        bench_plain(data, noise)


if __name__ == "__main__":
    main()
