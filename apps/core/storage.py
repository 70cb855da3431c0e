"""Storage for files carrying PHI: never addressable by URL."""

from __future__ import annotations

from django.core.files.storage import FileSystemStorage


class PhiStorage(FileSystemStorage):
    """Originals with PHI. ``url()`` refuses: serve only via permission-checked views."""

    def url(self, name: str | None) -> str:
        raise NotImplementedError("PHI files are never served by URL.")
