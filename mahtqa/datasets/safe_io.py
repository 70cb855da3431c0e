"""The security boundary of dataset registration (standard library only).

A dataset comes from a folder under admin-configured roots (``resolve_under_roots``,
``iter_files_under``) or from an uploaded zip (``extract_zip_safely``: the whole central
directory is checked before anything is written, then each entry is streamed while the
bytes really produced are counted and CRC-checked, into a hidden folder next to ``dest``
renamed to ``dest`` only if every entry is good). Every refusal is an ``UnsafeInput``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import secrets
import shutil
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_LOC64 = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory
_CDH = struct.Struct("<4s6H3L5H2L")  # central directory file header
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


class UnsafeInput(Exception):
    """code: a stable error code; message: a human sentence (no secrets, no
    absolute paths of the server beyond the root name)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # both in args, so it pickles (Celery)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


def _inside(path: str | Path, root: str | Path) -> bool:
    return Path(path).is_relative_to(root)


def resolve_under_roots(path: str, *, roots: Sequence[Path]) -> Path:
    """The real path of the folder ``path`` names: a relative one is tried against each
    root in order (the first where it exists wins), an absolute one must lie inside a
    root; with symlinks resolved it must still be inside that root."""
    path = os.fspath(path)
    if not path or not path.strip():
        raise UnsafeInput("path_empty", "No folder was given.")
    if "\x00" in path:
        raise UnsafeInput("path_invalid", "The folder name contains a NUL byte.")
    if ".." in re.split(r"[\\/]", path):
        raise UnsafeInput("path_traversal", "The folder name must not contain '..'.")
    if not roots:
        raise UnsafeInput("roots_not_configured", "No dataset roots are configured.")
    if os.path.isabs(path):
        norm = os.path.normpath(path)
        hits = [(r, norm) for r in roots if _inside(norm, r) or _inside(norm, os.path.realpath(r))]
        missing = ("path_outside_root", "The folder is outside the dataset roots.")
    else:
        hits = [(r, os.path.join(r, path)) for r in roots if os.path.exists(os.path.join(r, path))]
        missing = ("path_not_found", "No such folder under the dataset roots.")
    if not hits:
        raise UnsafeInput(*missing)
    root, candidate = Path(hits[0][0]), hits[0][1]
    real = os.path.realpath(candidate)
    if not _inside(real, os.path.realpath(root)):
        raise UnsafeInput("path_outside_root", f"The folder leaves the root {root.name!r}.")
    if not os.path.exists(real):
        raise UnsafeInput("path_not_found", f"No such folder under the root {root.name!r}.")
    if not os.path.isdir(real):
        raise UnsafeInput("path_not_directory", "The path is a file, not a folder.")
    return Path(real)


def resolve_entry_under_roots(path: str, *, roots: Sequence[Path], folders: bool = False) -> Path:
    """A file (or, with ``folders``, a file or folder) under one of the roots: its folder
    goes through :func:`resolve_under_roots`, the last name must be a plain entry there
    (not a symlink, not ``..``). ``path_not_found`` otherwise."""
    parent, _, name = path.rstrip("/").rpartition("/")
    folder = resolve_under_roots(parent or ".", roots=roots)
    target = folder / name if name else folder
    ok = target.is_file() or (folders and target.is_dir())
    if name in ("..", ".") or target.is_symlink() or not ok:
        raise UnsafeInput("path_not_found", "No such entry under the configured roots.")
    return target


def iter_files_under(root: Path, *, max_files: int) -> Iterator[Path]:
    """Regular files under ``root``, depth first, sorted by name per directory, one
    listing held per level. Hidden names and symlinks leaving ``root`` are skipped; a
    symlink to a file inside ``root`` is yielded, symlinked directories are not entered
    (no cycles, no duplicates). ``too_many_files`` on the file after the ``max_files``-th.
    """
    root = Path(root)
    if not root.is_dir():
        raise UnsafeInput("path_not_directory", "The dataset path is not a folder.")
    real_root = os.path.realpath(root)
    count = 0

    def listing(directory: str) -> Iterator[os.DirEntry[str]]:
        with os.scandir(directory) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        return iter(entries)

    stack = [listing(os.fspath(root))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.is_symlink():
            if not _inside(os.path.realpath(entry.path), real_root) or not entry.is_file():
                continue
        elif entry.is_dir(follow_symlinks=False):
            stack.append(listing(entry.path))
            continue
        elif not entry.is_file(follow_symlinks=False):
            continue  # sockets, FIFOs, devices
        count += 1
        if count > max_files:
            raise UnsafeInput("too_many_files", f"The folder holds more than {max_files} files.")
        yield Path(entry.path)


@dataclass(frozen=True)
class ZipLimits:
    max_archive_bytes: int = 2 * 1024**3
    max_entries: int = 20_000
    max_total_uncompressed: int = 8 * 1024**3
    max_entry_uncompressed: int = 512 * 1024**2
    max_ratio: float = 200.0  # per entry, uncompressed / compressed
    ratio_min_bytes: int = 1024**2  # entries no larger than this skip the ratio check


def _bad(message: str) -> UnsafeInput:
    return UnsafeInput("zip_invalid", message)


def _show(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _count_entries(fp: BinaryIO, size: int, limit: int) -> None:
    """Walk the central directory without building ZipInfo objects: a million-entry
    archive is refused after ``limit + 1`` headers (zipfile would parse them all)."""
    fp.seek(start := max(0, size - _EOCD.size - 0xFFFF))
    tail = fp.read()
    if (at := tail.rfind(b"PK\x05\x06")) < 0 or len(tail) - at < _EOCD.size:
        raise _bad("The upload is not a zip archive.")
    cd_end, cd_size = start + at, _EOCD.unpack_from(tail, at)[5]
    if cd_end >= _LOC64.size + _EOCD64.size:
        fp.seek(cd_end - _LOC64.size)
        if fp.read(4) == b"PK\x06\x07":
            cd_end -= _LOC64.size + _EOCD64.size
            fp.seek(cd_end)
            record = fp.read(_EOCD64.size)
            if len(record) != _EOCD64.size or record[:4] != b"PK\x06\x06":
                raise _bad("The zip64 directory is corrupt.")
            cd_size = _EOCD64.unpack(record)[8]
    pos, count = cd_end - cd_size, 0
    while pos < cd_end:
        fp.seek(max(pos, 0))
        head = fp.read(_CDH.size)
        if pos < 0 or len(head) != _CDH.size or head[:4] != b"PK\x01\x02":
            raise _bad("The zip directory is corrupt.")
        if (count := count + 1) > limit:
            raise UnsafeInput("zip_too_many_entries", f"The zip has more than {limit} entries.")
        pos += _CDH.size + sum(_CDH.unpack(head)[10:13])


def _entry_parts(name: str) -> tuple[str, ...]:
    """The path components of an entry name, or ``zip_slip``."""
    flat = name.replace("\\", "/")
    parts = tuple(p for p in flat.split("/") if p not in ("", "."))
    if flat.startswith("/") or _DRIVE.match(flat) or ".." in parts:
        raise UnsafeInput("zip_slip", f"The zip entry {_show(name)} points outside the folder.")
    return parts


def _plan(zf: zipfile.ZipFile, limits: ZipLimits) -> list[tuple[zipfile.ZipInfo, tuple]]:
    """Validate every entry; return the (info, parts) to extract."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeInput("zip_too_many_entries", "The zip has too many entries.")
    plan, seen, dirs, total = [], set(), set(), 0
    for info in infos:
        shown = _show(info.filename)
        if info.flag_bits & 0x41:
            raise UnsafeInput("zip_encrypted", f"The zip entry {shown} is encrypted.")
        parts = _entry_parts(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeInput("zip_symlink", f"The zip entry {shown} is a symbolic link.")
        if info.filename.replace("\\", "/").endswith("/"):
            continue  # directory entry
        if not parts:
            raise UnsafeInput("zip_slip", f"The zip entry {shown} has no usable name.")
        if info.compress_type not in _METHODS:
            raise _bad(f"The zip entry {shown} uses an unsupported compression method.")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if (
            info.file_size > limits.max_entry_uncompressed
            or total > limits.max_total_uncompressed
            or (info.file_size > limits.ratio_min_bytes and ratio > limits.max_ratio)
        ):
            raise UnsafeInput("zip_bomb", f"The zip entry {shown} expands too much.")
        if parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
            continue
        key = unicodedata.normalize("NFC", "/".join(parts)).casefold()
        if key in seen:
            raise UnsafeInput("zip_duplicate_entry", f"The zip holds {shown} twice.")
        seen.add(key)
        dirs.update(key.rsplit("/", n)[0] for n in range(1, key.count("/") + 1))
        plan.append((info, parts))
    if seen & dirs:
        raise UnsafeInput("zip_duplicate_entry", "The zip holds a file and a folder of one name.")
    spans = sorted((i.header_offset, i.compress_size) for i in infos)
    for (start, length), (following, _) in zip(spans, spans[1:], strict=False):
        if start + 30 + length > following:  # overlapping entries: a known bomb shape
            raise UnsafeInput("zip_bomb", "The zip entries overlap.")
    return plan


def _extract_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, cap: int) -> int:
    """Stream one entry into ``target``; at most ``cap`` bytes, else ``zip_bomb``."""
    probe = copy.copy(info)
    probe.file_size = cap + 1  # let the decompressor run past the declared size...
    del probe.CRC  # ...and check the CRC here, over the bytes really produced
    produced, crc = 0, 0
    too_much = f"The zip entry {_show(info.filename)} expands past the limits."
    try:
        with zf.open(probe) as src, target.open("xb") as out:
            while chunk := src.read(CHUNK):
                produced += len(chunk)
                if produced > cap:
                    raise UnsafeInput("zip_bomb", too_much)
                crc = zlib.crc32(chunk, crc)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise _bad(f"The zip entry {_show(info.filename)} is corrupt.") from exc
    if produced != info.file_size or crc != info.CRC:
        raise _bad(f"The zip entry {_show(info.filename)} is corrupt (size or CRC).")
    return produced


def extract_zip_safely(
    source: BinaryIO | Path, *, dest: Path, limits: ZipLimits = ZipLimits()
) -> list[Path]:
    """Extract the zip ``source`` into the new folder ``dest``, all or nothing; return
    the extracted files, sorted. Directory entries, ``__MACOSX/`` and hidden names are
    not extracted; file modes are not kept."""
    dest = Path(dest)
    if os.path.lexists(dest):
        raise UnsafeInput("dest_exists", "The destination folder already exists.")
    with contextlib.ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            fp: BinaryIO = stack.enter_context(open(source, "rb"))  # noqa: SIM115
        elif not source.seekable():
            raise _bad("The upload must be a seekable file.")
        else:
            fp = source
        size = fp.seek(0, os.SEEK_END)
        if size > limits.max_archive_bytes:
            raise UnsafeInput("zip_too_large", "The zip is larger than the upload limit.")
        _count_entries(fp, size, limits.max_entries)
        fp.seek(0)
        try:
            zf = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise _bad("The upload is not a valid zip archive.") from exc
        with zf:
            plan = _plan(zf, limits)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.partial"
            tmp.mkdir()
            try:
                total, written = 0, []
                for info, parts in plan:
                    target = tmp.joinpath(*parts)
                    if not _inside(os.path.realpath(target), os.path.realpath(tmp)):
                        raise UnsafeInput("zip_slip", "A zip entry points outside the folder.")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    cap = min(
                        limits.max_entry_uncompressed,
                        limits.max_total_uncompressed - total,
                        max(limits.ratio_min_bytes, int(limits.max_ratio * info.compress_size)),
                    )
                    total += _extract_entry(zf, info, target, cap)
                    written.append(Path(*parts))
                if os.path.lexists(dest):  # created meanwhile: rename would replace an empty dir
                    raise UnsafeInput("dest_exists", "The destination folder already exists.")
                os.rename(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    return sorted(dest / rel for rel in written)
