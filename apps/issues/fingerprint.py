"""Fingerprints: what makes two reports "the same problem"."""

from __future__ import annotations

import hashlib
import re
from typing import Any

TOP_FRAMES = 3

_UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_HEX_RE = re.compile(r"\b(?:0x[0-9a-f]+|[0-9a-f]{8,})\b", re.I)
_PATH_RE = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:]+)+[\\/]?")
_NUM_RE = re.compile(r"\d+(?:\.\d+)?")
_SPACE_RE = re.compile(r"\s+")


def _path_stem(match: re.Match[str]) -> str:
    # Keep the file name (its non-numeric part); drop the variable directories.
    name = re.split(r"[\\/]", match.group().rstrip("\\/"))[-1]
    return "<path>/" + _NUM_RE.sub("<n>", name)


def message_normalise(message: str) -> str:
    text = _UUID_RE.sub("<uuid>", message or "")
    text = _PATH_RE.sub(_path_stem, text)
    text = _HEX_RE.sub("<hex>", text)
    text = _NUM_RE.sub("<n>", text)
    return _SPACE_RE.sub(" ", text).strip().lower()[:500]


def _frame_key(frame: dict[str, Any]) -> str:
    filename = str(frame.get("filename", ""))
    # Only the last two path parts: site-packages vs checkout locations differ.
    parts = [p for p in re.split(r"[\\/]", filename) if p][-2:]
    return f"{'/'.join(parts)}:{frame.get('function', '')}"


def fingerprint_compute(
    *, category: str, exception_type: str = "", frames: list[dict[str, Any]] | None = None,
    message: str = "",
) -> str:  # fmt: skip
    """category + exception type + normalised top frames, else the normalised message."""
    if exception_type and frames:
        basis = "|".join(_frame_key(f) for f in frames[-TOP_FRAMES:])
        raw = f"v1|{category}|{exception_type}|frames|{basis}"
    else:
        raw = f"v1|{category}|{exception_type}|msg|{message_normalise(message)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]
