"""API key hashing, shared by the token services and selectors (no Django models)."""

from __future__ import annotations

import hashlib

PREFIX_LENGTH = 8


def api_key_hash(*, raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()
