"""Intake rate against Orthanc 1.10 on the same CR files, side by side, in one run.

    python bench/intake.py                 # 50 files per kind, 1 and 4 clients
    python bench/intake.py --n 20 --rounds 3

Runs itself inside a private network namespace (``unshare -n``: loopback only, so
Orthanc, which has no bind-address option, is reachable from nothing else). In it:
Debian's ``orthanc`` (REST ``POST /instances``) and MAHT-QA under gunicorn with 2
workers (production settings, PostgreSQL through its Unix socket, database
``mahtqa_bench_intake``). Each round sends the same N files (fresh UIDs per round,
so nothing deduplicates) from C client threads to each server, alternating which
goes first, and takes the median rate over rounds (after 4 untimed files of each kind
to each server). Files: pydicom-data's Philips
and Fuji CR radiographs, uncompressed and JPEG 2000 lossless.

Prints a table and the ratios (ours / Orthanc) and asserts the targets of issue 9:
uncompressed >= 1.0x, JPEG 2000 >= 0.5x, for 1 and 4 clients.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py would shadow the standard library's queue module: drop bench/ first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = Path(__file__).resolve().parents[1]
DB = "mahtqa_bench_intake"
SOCKET_DB_URL = f"postgres://postgres@/{DB}"  # empty host: the Unix socket
TARGETS = {"uncompressed": 1.0, "jpeg2000": 0.5}
SOURCES = {
    "uncompressed": ["RG1_UNCR.dcm", "RG3_UNCR.dcm"],
    "jpeg2000": ["RG1_J2KR.dcm", "RG3_J2KR.dcm"],
}
ORTHANC_PORT, WEB_PORT = 8042, 8011


def _in_namespace() -> bool:
    return os.environ.get("MAHTQA_BENCH_NETNS") == "1"


def _reexec_in_namespace() -> None:
    if shutil.which("unshare") is None or shutil.which("Orthanc") is None:
        sys.exit("needs util-linux unshare and Debian's orthanc (apt-get install orthanc)")
    env = {**os.environ, "MAHTQA_BENCH_NETNS": "1"}
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
           sys.executable, *sys.argv]  # fmt: skip
    sys.exit(subprocess.call(cmd, env=env))


def _files(kind: str, n: int, round_no: int) -> list[bytes]:
    """N files of ``kind`` with UIDs fresh for this round."""
    import data_store  # pydicom-data
    import pydicom
    from pydicom.uid import generate_uid

    root = Path(data_store.__file__).parent / "data"
    sources = [pydicom.dcmread(root / name) for name in SOURCES[kind]]
    out = []
    for i in range(n):
        ds = sources[i % len(sources)]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientID = f"BENCH-{round_no}-{i}"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def _post(url: str, data: bytes, headers: dict) -> int:
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - loopback
        r.read()
        return r.status


def _rate(url: str, files: list[bytes], headers: dict, clients: int) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = list(pool.map(lambda d: _post(url, d, headers), files))
    wall = time.perf_counter() - t0
    bad = [s for s in statuses if s not in (200, 202)]
    if bad:
        raise SystemExit(f"{url}: unexpected statuses {bad[:5]}")
    return len(files) / wall


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def _start_orthanc(tmp: Path) -> subprocess.Popen:
    config = {
        "Name": "bench", "StorageDirectory": str(tmp / "orthanc-db"),
        "IndexDirectory": str(tmp / "orthanc-db"), "HttpPort": ORTHANC_PORT,
        "DicomServerEnabled": False, "AuthenticationEnabled": False,
        "RemoteAccessAllowed": False, "HttpThreadsCount": 50, "StorageCompression": False,
        "Plugins": [],
    }  # fmt: skip
    (tmp / "orthanc.json").write_text(json.dumps(config))
    log = (tmp / "orthanc.log").open("w")
    proc = subprocess.Popen(["Orthanc", str(tmp / "orthanc.json")], stdout=log, stderr=log)
    _wait_http(f"http://127.0.0.1:{ORTHANC_PORT}/system")
    return proc


def _django_env(tmp: Path) -> dict:
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "mahtqa.settings.prod",
        "SECRET_KEY": "bench-only-" + "x" * 40, "PHI_PSEUDONYM_KEY": "bench-pseudonym-key",
        "DATABASE_URL": SOCKET_DB_URL, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "CACHE_URL": "locmemcache://bench", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false", "MAHTQA_MEDIA_ROOT": str(tmp / "media"),
        "MAHTQA_PHI_ROOT": str(tmp / "phi"), "MAHTQA_API_THROTTLE": "100000/minute",
        "DJANGO_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    }  # fmt: skip


def _prepare_django(env: dict) -> str:
    import psycopg

    with psycopg.connect("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/postgres",
                         autocommit=True) as c:  # fmt: skip
        c.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        c.execute(f'CREATE DATABASE "{DB}"')
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True)
    out = subprocess.run([*manage, "create_api_client", "bench-pacs"], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return out.strip().splitlines()[-1].split()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--no-assert", action="store_true")
    args = parser.parse_args()
    if not _in_namespace():
        _reexec_in_namespace()
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    env = _django_env(tmp)
    key = _prepare_django(env)
    orthanc = _start_orthanc(tmp)
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mahtqa.wsgi", "-b", f"127.0.0.1:{WEB_PORT}",
         "-w", "2", "--timeout", "120"],
        env=env, cwd=ROOT, stdout=(tmp / "web.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    _wait_http(f"http://127.0.0.1:{WEB_PORT}/healthz")
    ours = (
        f"http://127.0.0.1:{WEB_PORT}/api/v1/studies/",
        {"Authorization": f"Token {key}", "Content-Type": "application/dicom"},
    )
    theirs = (f"http://127.0.0.1:{ORTHANC_PORT}/instances",
              {"Content-Type": "application/dicom"})  # fmt: skip
    rows, failed = [], []
    try:
        for url, headers in (ours, theirs):
            for kind in SOURCES:  # warm-up, not timed: both workers, both kinds
                _rate(url, _files(kind, 4, 999), headers, 2)
        for kind in SOURCES:
            for clients in [int(c) for c in args.clients.split(",")]:
                rates: dict[str, list[float]] = {"maht-qa": [], "orthanc": []}
                for r in range(args.rounds):
                    order = [("maht-qa", ours), ("orthanc", theirs)]
                    for name, (url, headers) in order if r % 2 == 0 else order[::-1]:
                        files = _files(kind, args.n, r * 10 + clients)
                        rates[name].append(_rate(url, files, headers, clients))
                m, o = statistics.median(rates["maht-qa"]), statistics.median(rates["orthanc"])
                ratio = m / o
                rows.append((kind, clients, m, o, ratio, TARGETS[kind]))
                if ratio < TARGETS[kind]:
                    failed.append(f"{kind} x{clients}: {ratio:.2f} < {TARGETS[kind]}")
    finally:
        web.terminate()
        orthanc.terminate()
        web.wait(timeout=20)
        orthanc.wait(timeout=20)
    print(f"\n{args.n} files per round, {args.rounds} rounds, medians (files/s)\n")
    print("| files | clients | MAHT-QA | Orthanc 1.10 | ratio | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, clients, m, o, ratio, target in rows:
        print(f"| {kind} | {clients} | {m:.1f} | {o:.1f} | {ratio:.2f}x | >= {target}x |")
    shutil.rmtree(tmp, ignore_errors=True)
    if failed and not args.no_assert:
        raise SystemExit("below target: " + "; ".join(failed))


if __name__ == "__main__":
    main()
