"""Dataset validation at scale: 10,000 images in bounded memory, at a throughput within
1.3x of a bare decode loop over the same files with the same worker count (issue
"Datasets", item 7).

    python bench/datasets.py --images 10000 --rounds 3 --workers 1,2

1. Generates ``--images`` ISBI-layout images under ``--workdir`` (reused when already
   complete): copy k of the 100 real cephalograms of ``../shared/data/isbi2015-subset``
   (case k mod 100) gets its own small random affine (shift up to 4 px, scale
   0.97-1.03), gamma 0.92-1.08 and Gaussian noise (sigma 0.5-2); both annotators'
   19 points go through the same affine. PNG via ``cv2.imwrite`` defaults, 2 processes.
   A second set of N/5 images (hard links to the first N/5) is the memory reference.
2. Uses its own database ``mahtqa_bench_datasets`` (created if missing, migrated),
   ``MAHTQA_DATASET_ROOTS`` = the workdir's parent, ``MAHTQA_DATASET_STORE`` = a temp
   folder; registers both folders with ``dataset_register_folder`` (timed: it hashes
   every file).
3. For each worker count, ``--rounds`` times, taking turns going first: a bare decode
   loop (read the bytes, ``cv2.imdecode`` grayscale, ``--workers`` threads) over the
   version's images, and a full validation run (``validation_run_execute``, a new run
   on the same version, ``MAHTQA_DATASET_WORKERS`` = the worker count). Medians, and the
   ratio of the medians validation/bare: target <= 1.3.
4. Memory: the process RSS is sampled every 50 ms during each validation. For the
   N-vs-N/5 comparison each validation runs alone in a fresh process (so the
   allocator's retained pages from earlier runs do not hide growth): peak growth at N
   <= 1.5x the growth at N/5 + 50 MB, and < 600 MB.

Prints markdown tables and the ratios it asserts; exits 1 when a target is missed.
``--keep`` keeps the datasets it registered (and their runs); by default they are
deleted at the end. ``--profile K`` instead profiles one validation of K images
(cProfile, 1 worker) and prints the top 25 lines by cumulative time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mahtqa_bench_datasets")
SOURCE = ROOT.parent / "shared/data/isbi2015-subset"
ANNOTATORS = ("senior", "junior")
SPACING = "0.300,0.3023"
GENERATOR = 1  # bump when the generated images change, so old folders are rebuilt
TARGET_RATIO = 1.3
MB = 1024 * 1024


# --- generation ----------------------------------------------------------------------

_SOURCES: list[tuple] = []


def _load_sources() -> None:
    import cv2
    import numpy as np

    for image in sorted((SOURCE / "images").glob("*.png")):
        gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        points = {
            a: np.loadtxt(SOURCE / "annotations" / a / f"{image.stem}.txt", delimiter=",")
            for a in ANNOTATORS
        }
        _SOURCES.append((gray, points))


def _make(args: tuple[int, str]) -> int:
    """Copy ``k``: one source case through its own affine, gamma and noise."""
    import cv2
    import numpy as np

    k, folder = args
    out = Path(folder)
    name = f"{k + 1:05d}"
    targets = [out / "images" / f"{name}.png"] + [
        out / "annotations" / a / f"{name}.txt" for a in ANNOTATORS
    ]
    if all(t.exists() for t in targets):
        return k
    gray, points = _SOURCES[k % len(_SOURCES)]
    rng = np.random.default_rng(1_000_003 + k)
    h, w = gray.shape
    s = rng.uniform(0.97, 1.03)
    dx, dy = rng.uniform(-4.0, 4.0, 2)
    m = np.array([[s, 0.0, (1 - s) * w / 2 + dx], [0.0, s, (1 - s) * h / 2 + dy]])
    moved = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    lut = (255.0 * (np.arange(256) / 255.0) ** rng.uniform(0.92, 1.08)).astype(np.float32)
    pixels = lut[moved] + rng.normal(0.0, rng.uniform(0.5, 2.0), moved.shape).astype(np.float32)
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    tmp = targets[0].with_name(f".{name}.png")
    cv2.imwrite(str(tmp), pixels)  # hidden name until complete: a killed run leaves no half file
    for a, target in zip(ANNOTATORS, targets[1:], strict=True):
        p = points[a] @ m[:, :2].T + m[:, 2]
        target.write_text("".join(f"{x:.1f},{y:.1f}\n" for x, y in p))
    os.replace(tmp, targets[0])
    return k


def _marker(folder: Path) -> Path:
    return folder.with_name(f"{folder.name}.complete")


def _complete(folder: Path, n: int) -> bool:
    try:
        return json.loads(_marker(folder).read_text()) == {"n": n, "generator": GENERATOR}
    except (OSError, ValueError):
        return False


def generate(workdir: Path, n: int) -> Path:
    folder = workdir / f"n{n}"
    if _complete(folder, n):
        print(f"reusing {n} images in {folder}")
        return folder
    for sub in ["images"] + [f"annotations/{a}" for a in ANNOTATORS]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    from multiprocessing import Pool  # after the sys.path fix: bench/queue.py is not queue

    t0 = time.perf_counter()
    with Pool(2, initializer=_load_sources) as pool:
        jobs = ((k, str(folder)) for k in range(n))
        for i, _ in enumerate(pool.imap_unordered(_make, jobs, chunksize=25), start=1):
            if i % 500 == 0 or i == n:
                rate = i / (time.perf_counter() - t0)
                print(f"  generated {i}/{n} ({rate:.0f} images/s)", flush=True)
    _marker(folder).write_text(json.dumps({"n": n, "generator": GENERATOR}))
    size = sum(p.stat().st_size for p in (folder / "images").iterdir()) / MB
    print(f"generated {n} images ({size:.0f} MB) in {time.perf_counter() - t0:.0f} s: {folder}")
    return folder


def subset(workdir: Path, big: Path, n: int) -> Path:
    """The first ``n`` images of ``big`` as hard links (same bytes, no extra disk)."""
    folder = workdir / f"n{n}"
    if _complete(folder, n):
        return folder
    for sub in ["images"] + [f"annotations/{a}" for a in ANNOTATORS]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k in range(n):
        name = f"{k + 1:05d}"
        for rel in [f"images/{name}.png"] + [f"annotations/{a}/{name}.txt" for a in ANNOTATORS]:
            if not (folder / rel).exists():
                os.link(big / rel, folder / rel)
    _marker(folder).write_text(json.dumps({"n": n, "generator": GENERATOR}))
    return folder


# --- Django ------------------------------------------------------------------------------


def setup_django(workdir: Path, store: Path, migrate: bool) -> None:
    import django

    os.environ["MAHTQA_DATASET_ROOTS"] = str(workdir.parent)
    os.environ["MAHTQA_DATASET_STORE"] = str(store)
    if migrate:
        import psycopg

        base, name = os.environ["DATABASE_URL"].rsplit("/", 1)
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.conf import settings

    # mahtqa.settings.test fixes both (tests override them), so the env alone is not enough.
    settings.MAHTQA_DATASET_ROOTS = [workdir.parent]
    settings.MAHTQA_DATASET_STORE = store
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def register(folder: Path, n: int):
    from apps.datasets.services.registration import dataset_register_folder

    t0 = time.perf_counter()
    version = dataset_register_folder(
        path=str(folder), name=f"bench-{n}-{time.strftime('%Y%m%d-%H%M%S')}", spacing=SPACING
    )
    seconds = time.perf_counter() - t0
    assert version.image_count == n, (version.image_count, version.layout_problems[:3])
    return version, seconds


# --- measurements --------------------------------------------------------------------


class RssPeak(threading.Thread):
    """Peak RSS of this process, sampled every 50 ms, over the baseline at start."""

    def __init__(self):
        import psutil

        super().__init__(daemon=True)
        self.process = psutil.Process()
        self.baseline = self.peak = self.process.memory_info().rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return (self.peak - self.baseline) / MB


def bare_decode(root: Path, files: list[str], workers: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    import cv2
    import numpy as np

    def one(rel: str) -> int:
        data = (root / rel).read_bytes()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        return image.shape[0]

    t0 = time.perf_counter()
    if workers == 1:
        for rel in files:
            one(rel)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(one, files):
                pass
    return time.perf_counter() - t0


def validate(version, workers: int) -> dict:
    """One full validation run; wall time, the dataset-wide phase's share, peak RSS."""
    from django.conf import settings

    from apps.datasets.services import validation

    settings.MAHTQA_DATASET_WORKERS = workers  # read at call time by each step
    finish = {"s": 0.0}
    original = validation._finish

    def timed_finish(*, run_id):
        t = time.perf_counter()
        try:
            return original(run_id=run_id)
        finally:
            finish["s"] += time.perf_counter() - t

    validation._finish = timed_finish  # instrumentation only: times the dataset-wide phase
    rss = RssPeak()
    rss.start()
    try:
        t0 = time.perf_counter()
        run = validation.validation_run_execute(
            run_id=validation.validation_run_start(version=version).pk
        )
        seconds = time.perf_counter() - t0
    finally:
        growth = rss.stop()
        validation._finish = original
    assert (run.status, run.done) == ("done", version.image_count), (run.status, run.done)
    leakage = run.summary.get("leakage", {})
    return {
        "run": run.pk,
        "s": seconds,
        "finish_s": finish["s"],
        "rss_mb": growth,
        "baseline_mb": rss.baseline / MB,
        "findings": sum(run.counts.values()),
        "near_duplicates": leakage.get("near_duplicates_across_splits", 0),
    }


def validate_in_child(version_id: int, workers: int, workdir: Path, store: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(version_id), "--workers", str(workers),
           "--workdir", str(workdir), "--store", str(store)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("CHILD "))
    return json.loads(line[len("CHILD ") :])


def cleanup(versions: list, runs: list[int]) -> None:
    from apps.datasets.models import Dataset
    from apps.outbox.models import OutboxMessage

    for run in runs:
        OutboxMessage.objects.filter(dedupe_key__startswith=f"dataset-validate:{run}:").delete()
    Dataset.objects.filter(pk__in={v.dataset_id for v in versions}).delete()


def profile(version, top: int = 25) -> None:
    import cProfile
    import pstats

    from django.conf import settings

    from apps.datasets.services.validation import validation_run_execute, validation_run_start

    settings.MAHTQA_DATASET_WORKERS = 1
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    validation_run_execute(run_id=validation_run_start(version=version).pk)
    prof.disable()
    print(f"validation of {version.image_count} images under cProfile: "
          f"{time.perf_counter() - t0:.1f} s (1 worker)\n")  # fmt: skip
    pstats.Stats(prof).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(top)


# --- main ----------------------------------------------------------------------------


def child(a: argparse.Namespace) -> None:
    setup_django(a.workdir, a.store, migrate=False)
    from apps.datasets.models import DatasetVersion

    version = DatasetVersion.objects.get(pk=a.child)
    version.images.first()  # the connection is open before the baseline is taken
    print("CHILD " + json.dumps(validate(version, int(a.workers))), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mahtqa-bench-datasets"))
    ap.add_argument("--store", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the registered datasets")
    ap.add_argument("--profile", type=int, default=0, metavar="K",
                    help="only profile one validation of K images")  # fmt: skip
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.workdir = a.workdir.resolve()
    if a.child:
        return child(a)
    if ROOT in (a.workdir, *a.workdir.parents):
        sys.exit(f"--workdir {a.workdir} is inside the repository: use a folder under /tmp")
    a.store = Path(tempfile.mkdtemp(prefix="mahtqa-bench-store-"))
    workers = [int(w) for w in a.workers.split(",")]
    n, small_n = a.images, max(1, a.images // 5)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; "
          f"{n} images, {a.rounds} rounds, workers {workers}")  # fmt: skip

    if a.profile > n:
        sys.exit("--profile K takes the first K of the --images set: K <= --images")
    big = generate(a.workdir, n)
    setup_django(a.workdir, a.store, migrate=True)
    from django.conf import settings

    print(f"database {settings.DATABASES['default']['NAME']}; dataset roots "
          f"{settings.MAHTQA_DATASET_ROOTS}; store {settings.MAHTQA_DATASET_STORE}")  # fmt: skip
    if a.profile:
        version, _ = register(subset(a.workdir, big, a.profile), a.profile)
        try:
            profile(version)
        finally:
            if not a.keep:
                cleanup([version], list(version.validation_runs.values_list("pk", flat=True)))
            shutil.rmtree(a.store, ignore_errors=True)
        return

    version, reg_s = register(big, n)
    small, small_reg_s = register(subset(a.workdir, big, small_n), small_n)
    print("\n| images | registration s | images/s (sha256 of every file, manifest, inserts) |")
    print("| --- | --- | --- |")
    print(f"| {n} | {reg_s:.1f} | {n / reg_s:.0f} |")
    print(f"| {small_n} | {small_reg_s:.1f} | {small_n / small_reg_s:.0f} |")

    files = list(version.images.order_by("pk").values_list("file", flat=True))
    root = Path(version.root_path)
    bare_decode(root, files[:50], 1)  # warm-up: imports, first decode
    runs, rows, ok = [], [], True
    print("\n| workers | round | first | bare s | validation s | dataset-wide s | "
          "ratio | peak RSS growth MB | load 1 min |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for w in workers:
        bare, full = [], []
        for r in range(a.rounds):
            order = ("bare", "validation") if r % 2 == 0 else ("validation", "bare")
            for kind in order:
                if kind == "bare":
                    bare.append(bare_decode(root, files, w))
                else:
                    full.append(validate(version, w))
                    runs.append(full[-1]["run"])
            print(f"| {w} | {r + 1} | {order[0]} | {bare[-1]:.1f} | {full[-1]['s']:.1f} | "
                  f"{full[-1]['finish_s']:.1f} | {full[-1]['s'] / bare[-1]:.2f} | "
                  f"{full[-1]['rss_mb']:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip
        rows.append((w, statistics.median(bare), full))

    print(f"\nMedians of {a.rounds} rounds, {n} images ({full[-1]['findings']} findings per run, "
          f"{full[-1]['near_duplicates']} of them near-duplicates across splits):\n")  # fmt: skip
    print("| workers | bare decode s | bare images/s | validation s | validation images/s | "
          "of which dataset-wide s | ratio validation/bare | target |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = []
    for w, b, full in rows:
        v = statistics.median(f["s"] for f in full)
        fin = statistics.median(f["finish_s"] for f in full)
        ratio = v / b
        ratios.append((w, ratio))
        ok &= ratio <= TARGET_RATIO
        print(f"| {w} | {b:.1f} | {n / b:.0f} | {v:.1f} | {n / v:.0f} | {fin:.1f} | "
              f"{ratio:.2f} | <= {TARGET_RATIO} |")  # fmt: skip

    w = max(workers)
    mem_small = validate_in_child(small.pk, w, a.workdir, a.store)
    mem_big = validate_in_child(version.pk, w, a.workdir, a.store)
    runs += [mem_small["run"], mem_big["run"]]
    limit = 1.5 * mem_small["rss_mb"] + 50
    in_process = max(f["rss_mb"] for _, _, full in rows for f in full)
    print(f"\nMemory: one validation each in a fresh process, {w} workers, RSS sampled every "
          "50 ms\n\n| images | baseline RSS MB | peak growth MB | validation s | findings |\n"
          "| --- | --- | --- | --- | --- |")  # fmt: skip
    for count, m in ((small_n, mem_small), (n, mem_big)):
        print(f"| {count} | {m['baseline_mb']:.0f} | {m['rss_mb']:.0f} | {m['s']:.1f} | "
              f"{m['findings']} |")  # fmt: skip
    mem_ok = mem_big["rss_mb"] <= limit and mem_big["rss_mb"] < 600 and in_process < 600
    ok &= mem_ok
    print()
    for w, ratio in ratios:
        print(f"workers {w}: validation/bare {ratio:.2f} vs target {TARGET_RATIO}: "
              f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}")  # fmt: skip
    print(f"peak RSS growth at {n}: {mem_big['rss_mb']:.0f} MB vs 1.5 x {mem_small['rss_mb']:.0f} "
          f"MB (at {small_n}) + 50 = {limit:.0f} MB: ratio {mem_big['rss_mb'] / limit:.2f}; "
          f"< 600 MB absolute (largest in-process round {in_process:.0f} MB): "
          f"{'met' if mem_ok else 'MISSED'}")  # fmt: skip
    if a.keep:
        print(f"kept versions {version.pk} and {small.pk} and their {len(runs)} runs")
    else:
        cleanup([version, small], runs)
    shutil.rmtree(a.store, ignore_errors=True)  # empty: only zip and DICOM sets are stored
    print("\nALL TARGETS MET" if ok else "\nSOME TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
