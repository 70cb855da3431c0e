"""Environment checks of files and services: disk, packages, model, storage, database, broker.

Framework-free: the database and broker probes are callables the caller passes in.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mahtqa.monitoring.environment_checks import AMBER, GIB, GREEN, RED, Check, Thresholds
from mahtqa.monitoring.requirements import Drift, installed_version, pins_drift


@dataclass(frozen=True)
class ModelRef:
    """The active model version as registered: where its file is and its sha256."""

    name: str
    version: str
    path: Path
    sha256: str


def check_disk(
    *, label: str, path: Path, thresholds: Thresholds, also: tuple[Path, ...] = ()
) -> Check:
    """Free space on the volume of ``path`` (``also``: other folders on the same volume)."""
    code = f"disk_{label}"
    try:
        usage = shutil.disk_usage(_existing_parent(path))
    except OSError as exc:
        return Check(code, RED, f"{path}: {exc.strerror or type(exc).__name__}", f"mkdir -p {path}")
    gb = usage.free / GIB
    where = f"{path}" + (f" (also {', '.join(map(str, also))})" if also else "")
    msg = f"{gb:.1f} GiB free of {usage.total / GIB:.1f} GiB at {where}"
    if gb < thresholds.disk_amber_gb:
        status = RED if gb < thresholds.disk_red_gb else AMBER
        return Check(
            code,
            status,
            msg,
            f"du -sh {path}/* | sort -h  # then free space or grow "
            "the volume (old exports, logs, unused model files)",
            round(gb, 2),
        )
    return Check(code, GREEN, msg, value=round(gb, 2))


def disk_volumes(dirs: Mapping[str, Path]) -> list[tuple[str, Path, tuple[Path, ...]]]:
    """``(label, path, other paths)`` per volume: one disk check per filesystem."""
    groups: dict[object, list[tuple[str, Path]]] = {}
    for label, path in dirs.items():
        try:
            key: object = os.stat(_existing_parent(path)).st_dev
        except OSError:
            key = label
        groups.setdefault(key, []).append((label, Path(path)))
    return [(g[0][0], g[0][1], tuple(p for _, p in g[1:])) for g in groups.values()]


def _existing_parent(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_packages(
    *,
    pins: Mapping[str, str],
    label: str,
    installed: Callable[[str], str | None] = installed_version,
) -> Check:
    drift: list[Drift] = pins_drift(pins=pins, installed=installed)
    if not pins:
        return Check("packages", AMBER, f"no pins read from {label}", f"ls {label}", 0)
    if not drift:
        return Check("packages", GREEN, f"{len(pins)} pinned packages match {label}", value=0)
    shown = "; ".join(
        f"{d.name} {d.installed or 'missing'} (pinned {d.pinned})" for d in drift[:10]
    ) + (f"; and {len(drift) - 10} more" if len(drift) > 10 else "")
    one = " ".join(f"'{d.name}=={d.pinned}'" for d in drift[:10])
    return Check(
        "packages",
        RED,
        f"{len(drift)} of {len(pins)} packages drift: {shown}",
        f"pip install -r {label}  # or only these: pip install {one}",
        len(drift),
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def check_model(
    *,
    model: ModelRef | None,
    sha256_of: Callable[[Path], str] | None = None,
    lookup_error: str = "",
) -> Check:
    """The active model's weights file is there and its sha256 is the registry's.
    ``lookup_error``: the registry could not be read (the database check says why)."""
    register = "python manage.py model_register_bundled"
    if lookup_error:
        return Check(
            "model",
            AMBER,
            f"not checked: the model registry could not be read ({lookup_error})",
            "see the database check",
        )
    if model is None:
        return Check(
            "model",
            RED,
            "no active model version",
            f"{register}  # or activate one on the Models page",
        )
    label = f"{model.name} {model.version}"
    if not Path(model.path).is_file():
        return Check(
            "model",
            RED,
            f"{label}: weights file missing at {model.path}",
            f"restore {model.path} from the model store (sha256 {model.sha256[:12]}…), "
            f"or {register}",
        )
    try:
        actual = (sha256_of or sha256_file)(Path(model.path))
    except OSError as exc:
        return Check(
            "model",
            RED,
            f"{label}: weights unreadable ({exc.strerror})",
            f"ls -l {model.path}  # fix its permissions",
        )
    if actual != model.sha256:
        return Check(
            "model",
            RED,
            f"{label}: sha256 {actual[:12]}… differs from the registry's "
            f"{model.sha256[:12]}… (file changed or corrupted)",
            f"restore {model.path} from the model store, or {register}",
            actual,
        )
    return Check("model", GREEN, f"{label}, sha256 {actual[:12]}… matches", value=actual)


def check_storage(*, label: str, directory: Path, thresholds: Thresholds) -> Check:
    """Write (with fsync), read back and delete a probe file; report the throughput."""
    code = f"storage_{label}"
    directory = Path(directory)
    size = int(thresholds.storage_probe_mb * 1024 * 1024)
    probe = directory / f".envcheck-{socket.gethostname()}-{uuid.uuid4().hex}.tmp"
    data = os.urandom(size)
    try:
        directory.mkdir(parents=True, exist_ok=True)  # as the file storage does on a save
        start = time.perf_counter()
        with probe.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        elapsed = time.perf_counter() - start
        if probe.read_bytes() != data:
            return Check(
                code,
                RED,
                f"{directory}: the probe read back differs",
                f"check the disk: dmesg | tail; fsck the volume of {directory}",
            )
    except OSError as exc:
        return Check(
            code,
            RED,
            f"{directory} is not writable ({_os_reason(exc)})",
            _storage_fix(exc, directory),
        )
    finally:
        with contextlib.suppress(OSError):  # never created when the folder is not usable
            probe.unlink(missing_ok=True)
    mb_s = round(size / 1024 / 1024 / max(elapsed, 1e-6), 1)
    msg = f"{directory} writable, {mb_s} MB/s (write + fsync)"
    if mb_s < thresholds.storage_amber_mb_s:
        return Check(
            code,
            AMBER,
            msg + " is slow",
            f"check the volume of {directory} (iostat -x 1; network storage latency)",
            mb_s,
        )
    return Check(code, GREEN, msg, value=mb_s)


def _os_reason(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__) + (
        f": {exc.strerror}" if exc.strerror else ""
    )


def _storage_fix(exc: OSError, directory: Path) -> str:
    if exc.errno == errno.ENOENT:
        return f"mkdir -p {directory} && chown $(id -un) {directory}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"chown -R $(id -un) {directory} && chmod u+rwx {directory}"
    if exc.errno == errno.EROFS:
        return f"remount the volume of {directory} read-write (mount -o remount,rw ...)"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"ls -ld {directory}  # a file is in the way: move it, then mkdir -p {directory}"
    if exc.errno == errno.ENOSPC:
        return f"free space on the volume of {directory}: du -sh {directory}/* | sort -h"
    return f"ls -ld {directory}  # and check its volume is mounted"


def check_probe(
    *,
    code: str,
    probe: Callable[[], None] | None,
    amber_ms: float,
    fix: str,
    what: str,
    rounds: int = 3,
) -> Check:
    """Reachability and round-trip latency (median of ``rounds``) of a database or broker."""
    if probe is None:
        return Check(code, AMBER, f"{what}: not checked here", fix)
    times = []
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            probe()
            times.append((time.perf_counter() - start) * 1000)
    except Exception as exc:  # noqa: BLE001 - class only: a message could carry a URL
        return Check(code, RED, f"{what} unreachable ({type(exc).__name__})", fix)
    ms = round(statistics.median(times), 2)
    if ms > amber_ms:
        return Check(code, AMBER, f"{what} slow: {ms} ms round trip", fix, ms)
    return Check(code, GREEN, f"{what} reachable, {ms} ms round trip", value=ms)
