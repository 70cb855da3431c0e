"""Storage for files carrying PHI (never addressable by URL), and one way to write
a file from parts without joining them first."""

from __future__ import annotations

import os
from collections.abc import Sequence

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.core.files.utils import validate_file_name

Part = bytes | bytearray | memoryview


class PhiStorage(FileSystemStorage):
    """Originals' headers with PHI. ``url()`` refuses: serve only via permission-checked views."""

    def url(self, name: str | None) -> str:
        raise NotImplementedError("PHI files are never served by URL.")


def storage_write_parts(*, storage: Storage, name: str, parts: Sequence[Part]) -> str:
    """Store ``parts`` one after the other as a new file; returns the stored name, as
    ``Storage.save`` does. On a file-system storage the parts go to the kernel in one
    ``writev`` (a 7 MB radiograph is not copied into a buffer or cut into 64 KiB
    chunks first) and an existing file is never overwritten; any other storage gets
    the joined bytes through ``save``. A failed write leaves no file behind."""
    if not isinstance(storage, FileSystemStorage):
        return storage.save(name, ContentFile(b"".join(parts)))
    validate_file_name(name, allow_relative_path=True)
    name = storage.get_available_name(name)
    path = storage.path(name)
    directory = os.path.dirname(path)
    if storage.directory_permissions_mode is not None:
        old_umask = os.umask(0o777 & ~storage.directory_permissions_mode)
        try:
            os.makedirs(directory, storage.directory_permissions_mode, exist_ok=True)
        finally:
            os.umask(old_umask)
    else:
        os.makedirs(directory, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o666)
    try:
        _writev_all(fd, [memoryview(p).cast("B") for p in parts if len(p)])
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    if storage.file_permissions_mode is not None:
        os.chmod(path, storage.file_permissions_mode)
    return name.replace("\\", "/")


def _writev_all(fd: int, views: list[memoryview]) -> None:
    """``os.writev`` until every byte is written (it may write less than asked)."""
    while views:
        written = os.writev(fd, views[:512])  # well under IOV_MAX (1024 on Linux)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
