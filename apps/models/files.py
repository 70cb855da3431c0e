"""Weights files: path resolution and hashing (no Django models here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings


def weights_path_resolve(weights_path: str | Path) -> Path:
    path = Path(weights_path)
    return path if path.is_absolute() else Path(settings.MAHTQA_MODEL_DIR) / path


def sha256_file(path: Path, *, chunk_size: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file_cached(path: Path) -> str:
    """sha256 of ``path``, cached by (path, mtime_ns, size): re-hashes only when it changes."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _HASH_CACHE:
        _HASH_CACHE.clear()  # one weights file matters at a time; keep the cache tiny
        _HASH_CACHE[key] = sha256_file(path)
    return _HASH_CACHE[key]
