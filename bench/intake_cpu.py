"""Intake CPU per file, two code trees side by side: where a change moves the cost.

    git worktree add /tmp/base HEAD~1
    python bench/intake_cpu.py --base /tmp/base --n 40 --clients 4 --rounds 6

Starts two gunicorns (2 sync workers each, production settings, one database made by
``bench/intake.py``'s helpers), one on the code of ``--base`` (A) and one on this
checkout (B), and posts the same kind of files to each in alternating rounds (fresh
UIDs every round). For each round: the CPU seconds (user + system) its two workers
used, per file, read from ``/proc``, and the rate. Far steadier than rates on a noisy
machine: the CPU a request costs does not depend on what else runs. ``A_<VAR>`` and
``B_<VAR>`` in the environment set ``<VAR>`` for one server only (e.g.
``B_MAHTQA_STORAGE_SYNC=false`` with ``--base .`` compares a setting).

Prints a table per kind of file and the ratios B/A (CPU per file, rate); a diagnostic,
it asserts nothing (the targets are ``bench/intake.py``'s).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]  # queue.py
_spec = importlib.util.spec_from_file_location("bench_intake", ROOT / "bench" / "intake.py")
intake = importlib.util.module_from_spec(_spec)  # files, environment, database
_spec.loader.exec_module(intake)

PORTS = {"A": 8020, "B": 8021}


def _workers_cpu(web: subprocess.Popen) -> float:
    total = 0.0
    for child in psutil.Process(web.pid).children():
        times = child.cpu_times()
        total += times.user + times.system
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="checkout of the code to compare")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--kinds", default="uncompressed,jpeg2000")
    a = ap.parse_args()
    trees = {"A": a.base.resolve(), "B": ROOT}
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-cpu-"))
    env = intake._django_env(tmp)
    key = intake._prepare_django(env)
    webs = {}
    try:
        for name, tree in trees.items():
            own = {k[2:]: v for k, v in os.environ.items() if k.startswith(f"{name}_")}
            webs[name] = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "mahtqa.wsgi", "-b",
                 f"127.0.0.1:{PORTS[name]}", "-w", "2", "--timeout", "120"],
                env={**env, "PYTHONPATH": str(tree), **own}, cwd=tree,
                stdout=(tmp / f"web-{name}.log").open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
        headers = {"Authorization": f"Token {key}", "Content-Type": "application/dicom"}
        urls = {n: f"http://127.0.0.1:{p}/api/v1/studies/" for n, p in PORTS.items()}
        for name in trees:
            intake._wait_http(f"http://127.0.0.1:{PORTS[name]}/healthz")
            for kind in intake.SOURCES:  # warm-up, not counted
                intake._rate(urls[name], intake._files(kind, 4, 999), headers, 2)
        for kind in a.kinds.split(","):
            cpu: dict[str, list[float]] = {"A": [], "B": []}
            rate: dict[str, list[float]] = {"A": [], "B": []}
            for r in range(a.rounds):
                for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    files = intake._files(kind, a.n, r * 7 + ord(name))
                    before = _workers_cpu(webs[name])
                    rate[name].append(intake._rate(urls[name], files, headers, a.clients))
                    cpu[name].append((_workers_cpu(webs[name]) - before) / a.n * 1000)
            print(f"\n{kind}, {a.clients} clients, {a.rounds} rounds of {a.n} files\n")
            print("| tree | CPU ms per file (median) | rounds | files/s (median) |")
            print("| --- | --- | --- | --- |")
            for name in ("A", "B"):
                rounds = " ".join(f"{c:.1f}" for c in cpu[name])
                print(f"| {name} {trees[name]} | {statistics.median(cpu[name]):.1f} | {rounds} | "
                      f"{statistics.median(rate[name]):.1f} |")  # fmt: skip
            c = statistics.median(cpu["B"]) / statistics.median(cpu["A"])
            s = statistics.median(rate["B"]) / statistics.median(rate["A"])
            print(f"\nB/A: CPU per file {c:.3f}, rate {s:.3f}")
    finally:
        for web in webs.values():
            web.terminate()
        for web in webs.values():
            web.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
