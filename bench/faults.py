"""Recovery after faults on a live stack: the table of issue 9.

    python bench/faults.py

Runs the fault-injection suite (tests/faults/test_live_faults.py: gunicorn, a Celery
worker with concurrency 2, beat, this run's PostgreSQL test database, a private
Redis; kill -9 of worker children and the main process, Redis restarts without
persistence, the database refused) and prints what each scenario measured. The
suite's own assertions are the targets: 0 lost, 0 duplicated, no 5xx but 503, every
accepted study final within 90 s of the last fault.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    report = Path(tempfile.mkstemp(prefix="faults-", suffix=".jsonl")[1])
    env = {**os.environ, "MAHTQA_FAULTS_REPORT": str(report)}
    cmd = [sys.executable, "-m", "pytest", "tests/faults/test_live_faults.py", "-q",
           "-p", "no:cacheprovider"]  # fmt: skip
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    rows = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    print(
        "\n| fault | sent | accepted (202) | 503 | other 5xx | lost | duplicated "
        "| all final after the last fault |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['sent']} | {r['accepted']} | {r.get('refused_503', 0)} "
            f"| {r['other_5xx']} | {r.get('lost', 0)} | {r.get('duplicated', 0)} "
            f"| {r['final_after_last_fault_s']} s (target <= 90 s) |"
        )
    report.unlink()
    sys.exit(code)


if __name__ == "__main__":
    main()
