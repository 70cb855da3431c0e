"""Pinned requirements against the installed distributions (framework-free).

:func:`requirements_parse` reads ``name==version`` pins of a pip requirements file,
following ``-r``/``--requirement`` includes (relative to the including file); options,
``-c`` constraints, editables and URLs are skipped; extras are dropped
(``psycopg[binary]`` is ``psycopg``); a line whose environment marker does not apply
here is skipped. Names are normalised (PEP 503). A ``>=``-style line is recorded as
``""`` (presence only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def name_normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_applies(marker: str) -> bool:
    try:
        from packaging.markers import Marker  # pip's own dependency; optional here
    except ImportError:
        return True
    try:
        return bool(Marker(marker).evaluate())
    except Exception:  # noqa: BLE001 - an unreadable marker: keep the pin
        return True


def requirements_parse(path: Path, *, _seen: set[Path] | None = None) -> dict[str, str]:
    """``{normalised name: pinned version or ""}``; raises OSError when a file is missing."""
    path = Path(path).resolve()
    seen = _seen if _seen is not None else set()
    if path in seen:
        return {}
    seen.add(path)
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ", "-r", "--requirement=")):
            target = re.sub(r"^(-r|--requirement)[=\s]*", "", line).strip()
            pins.update(requirements_parse(path.parent / target, _seen=seen))
            continue
        if line.startswith("-") or "://" in line:
            continue
        spec, _, marker = line.partition(";")
        if marker.strip() and not _marker_applies(marker.strip()):
            continue
        match = _NAME.match(spec)
        if not match:
            continue
        name, rest = name_normalise(match.group(1)), match.group(3).strip()
        version = rest[2:].strip() if rest.startswith("==") and not rest.startswith("===") else ""
        pins[name] = version.split(",")[0].strip()
    return pins


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _release(v: str) -> tuple:
    """Public version without the local label (``2.13.0+cpu`` -> ``2.13.0``), zero-padded."""
    public = v.split("+", 1)[0].strip().lower()
    parts = public.split(".")
    if all(p.isdigit() for p in parts):
        nums = [int(p) for p in parts]
        while len(nums) > 1 and nums[-1] == 0:
            nums.pop()
        return tuple(nums)
    return (public,)


def version_matches(*, installed: str, pinned: str) -> bool:
    """PEP 440 ``==`` for the usual cases: a local label matches its public pin."""
    if pinned.endswith(".*"):
        return installed.split("+")[0].startswith(pinned[:-1])
    if "+" in pinned:
        return installed.strip().lower() == pinned.strip().lower()
    return _release(installed) == _release(pinned)


@dataclass(frozen=True)
class Drift:
    name: str
    pinned: str
    installed: str | None  # None: not installed


def pins_drift(
    *, pins: Mapping[str, str], installed: Callable[[str], str | None] = installed_version
) -> list[Drift]:
    out = []
    for name, pinned in sorted(pins.items()):
        have = installed(name)
        if have is None or (pinned and not version_matches(installed=have, pinned=pinned)):
            out.append(Drift(name=name, pinned=pinned or "any", installed=have))
    return out
