"""Storage for files carrying PHI (never addressable by URL), and one way to write
a file from parts without joining them first, on the device before it returns."""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import threading
from collections.abc import Sequence

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.core.files.utils import validate_file_name

from apps.core.unavailable import StorageUnavailable

logger = logging.getLogger(__name__)
Part = bytes | bytearray | memoryview
DIRECT_MIN_BYTES = 1024 * 1024  # below this a buffered write costs little
DIRECT_MAX_BYTES = 256 * 1024 * 1024  # larger files are written buffered
KEEP_BUFFER_BYTES = 16 * 1024 * 1024  # a thread keeps its aligned buffer up to this size
_ALIGN = 4096  # O_DIRECT: buffer, offset and length aligned to the logical block size
_local = threading.local()


class PhiStorage(FileSystemStorage):
    """Originals' headers with PHI. ``url()`` refuses: serve only via permission-checked views."""

    def url(self, name: str | None) -> str:
        raise NotImplementedError("PHI files are never served by URL.")


def storage_write_parts(*, storage: Storage, name: str, parts: Sequence[Part]) -> str:
    """Store ``parts`` one after the other as a new file; returns the stored name, as
    ``Storage.save`` does. On a file-system storage a small file goes to the kernel in
    one ``writev`` (not joined, not cut into 64 KiB chunks), and an existing file is
    never overwritten; any other storage gets the joined bytes through ``save``. A
    failed write leaves no file behind and raises ``StorageUnavailable``.

    Durable before it returns (``MAHTQA_STORAGE_SYNC``, on by default): the file's data
    and its directory entry are synced, so a study accepted with 202 keeps its files
    through a power loss, as its committed row does. Files of ``DIRECT_MIN_BYTES`` and
    more go to the device with ``O_DIRECT`` (``MAHTQA_STORAGE_DIRECT_IO``, on by
    default; see ``_write_direct``)."""
    if not isinstance(storage, FileSystemStorage):
        return storage.save(name, ContentFile(b"".join(parts)))
    validate_file_name(name, allow_relative_path=True)
    try:
        return _write_new(storage, name, parts)
    except OSError as exc:
        logger.error("storage write failed: %s (%s)", type(exc).__name__, exc.strerror)
        raise StorageUnavailable(exc.errno, exc.strerror) from exc


def _write_new(storage: FileSystemStorage, name: str, parts: Sequence[Part]) -> str:
    name = storage.get_available_name(name)
    path = storage.path(name)
    directory = os.path.dirname(path)
    new_dirs = _missing_directories(directory)
    if storage.directory_permissions_mode is not None:
        old_umask = os.umask(0o777 & ~storage.directory_permissions_mode)
        try:
            os.makedirs(directory, storage.directory_permissions_mode, exist_ok=True)
        finally:
            os.umask(old_umask)
    else:
        os.makedirs(directory, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    file_write(path=path, flags=flags, views=views)
    try:
        if storage.file_permissions_mode is not None:
            os.chmod(path, storage.file_permissions_mode)
        if settings.MAHTQA_STORAGE_SYNC:
            for made in new_dirs:  # a new date folder's own entry in its parent
                _sync_directory(os.path.dirname(made))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return name.replace("\\", "/")


def _missing_directories(directory: str) -> list[str]:
    """The folders ``makedirs`` will create for ``directory``, deepest first."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return missing


def _writev_all(fd: int, views: list[memoryview]) -> None:
    """``os.writev`` until every byte is written (it may write less than asked)."""
    while views:
        written = os.writev(fd, views[:512])  # well under IOV_MAX (1024 on Linux)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def file_write(*, path: str, flags: int, views: list[memoryview]) -> str:
    """Create ``path`` (``flags`` as for ``os.open``) holding ``views``; returns how it
    was written, ``"direct"`` or ``"buffered"``. Nothing is left behind on failure."""
    total = sum(len(v) for v in views)
    sync = settings.MAHTQA_STORAGE_SYNC
    o_direct = getattr(os, "O_DIRECT", 0)  # Linux and some BSDs; not macOS or Windows
    direct = (
        bool(o_direct)
        and settings.MAHTQA_STORAGE_DIRECT_IO
        and (DIRECT_MIN_BYTES <= total <= DIRECT_MAX_BYTES)
    )
    fd, created = -1, False
    try:
        if direct:
            try:
                fd = os.open(path, flags | o_direct, 0o666)
                created = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: the file system has no O_DIRECT
                    raise
                direct = False
                created = os.path.exists(path)  # made before the refusal (O_EXCL: by us)
        if direct and not _write_direct(fd, views, total):
            direct = False  # the device refused the alignment: write it the ordinary way
            os.close(fd)
            fd = -1
        if fd < 0:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC) if created else os.open(path, flags, 0o666)
            created = True
        if not direct:
            _writev_all(fd, list(views))
        if sync:
            getattr(os, "fdatasync", os.fsync)(fd)
        os.close(fd)
        fd = -1
        if sync:
            _sync_directory(os.path.dirname(path))
    except BaseException:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return "direct" if direct else "buffered"


def _write_direct(fd: int, views: list[memoryview], total: int) -> bool:
    """Write the parts with ``O_DIRECT`` through this thread's aligned buffer; False
    when the device refuses the alignment (the caller then writes it buffered).

    Why: a buffered write copies every byte into page-cache pages the kernel has to
    find first, and on this machine kind fresh pages are slow to come by: 18-21 ms of
    CPU for a new 7 MB file, 2.7 ms when freed pages were at hand, 0.6 ms with
    ``O_DIRECT`` (docs/benchmarks.md, intake). The copy into the buffer is the one
    copy left; the buffer is kept per thread, so its pages are warm after the first
    file. The tail is padded to the block size and cut back with ``ftruncate``."""
    padded = -(-total // _ALIGN) * _ALIGN
    buffer = _aligned_buffer(padded)
    offset = 0
    for view in views:
        buffer[offset : offset + len(view)] = view
        offset += len(view)
    buffer[total:padded] = bytes(padded - total)
    out = memoryview(buffer)[:padded]
    try:
        written = 0
        while written < padded:
            n = os.write(fd, out[written:])
            if n <= 0 or n % _ALIGN:
                return False
            written += n
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    finally:
        out.release()
        if len(buffer) > KEEP_BUFFER_BYTES:  # a rare large file: do not keep its buffer
            buffer.close()
            _local.buffer = None
    os.ftruncate(fd, total)
    return True


def _aligned_buffer(size: int) -> mmap.mmap:
    """This thread's page-aligned buffer of at least ``size`` bytes (grown in MiB)."""
    buffer = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) < size:
        if buffer is not None:
            buffer.close()
        # Private: a forked child must never write into its parent's pages.
        buffer = mmap.mmap(-1, -(-size // (1 << 20)) * (1 << 20), flags=mmap.MAP_PRIVATE)
        _local.buffer = buffer
    return buffer


def _sync_directory(directory: str) -> None:
    """Make a new directory entry durable (a synced file can still vanish without it)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
