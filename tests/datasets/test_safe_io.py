"""The security boundary of dataset registration: mahtqa.datasets.safe_io.

Malicious archives are built here with zipfile, and where zipfile refuses to
write them, by patching the local and central headers with struct.
"""

from __future__ import annotations

import ast
import io
import itertools
import os
import pickle
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mahtqa.datasets import safe_io
from mahtqa.datasets.safe_io import (
    UnsafeInput,
    ZipLimits,
    extract_zip_safely,
    iter_files_under,
    resolve_under_roots,
)

# --- helpers

# name -> (struct format, offset in the central header, offset in the local header)
_FIELDS = {
    "flag_bits": ("<H", 8, 6),
    "compress_size": ("<L", 20, 18),
    "file_size": ("<L", 24, 22),
}


def build_zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in entries:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
                info.compress_type = compression
                zf.writestr(info, data)
    return buf.getvalue()


def patch_headers(data: bytes, only: str | None = None, **fields: Callable[[int], int]) -> bytes:
    """Rewrite header fields of every entry (or of the entry ``only``) in both the
    central directory and the local headers, e.g. ``file_size=lambda old: 10``."""
    buf = bytearray(data)
    eocd = buf.rfind(b"PK\x05\x06")
    count, _size, pos = struct.unpack_from("<HLL", buf, eocd + 10)
    for _ in range(count):
        assert buf[pos : pos + 4] == b"PK\x01\x02"
        nlen, elen, clen = struct.unpack_from("<3H", buf, pos + 28)
        (local,) = struct.unpack_from("<L", buf, pos + 42)
        name = bytes(buf[pos + 46 : pos + 46 + nlen]).decode()
        if only is None or name == only:
            for field, change in fields.items():
                fmt, central_at, local_at = _FIELDS[field]
                (old,) = struct.unpack_from(fmt, buf, pos + central_at)
                struct.pack_into(fmt, buf, pos + central_at, change(old))
                struct.pack_into(fmt, buf, local + local_at, change(old))
        pos += 46 + nlen + elen + clen
    return bytes(buf)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty folder to extract into (the archives live in tmp_path, not here)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def write(tmp_path: Path, data: bytes, name: str = "upload.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_refused(code: str, data: object, out: Path, limits: ZipLimits = ZipLimits()):
    dest = out / "dataset"
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with pytest.raises(UnsafeInput) as caught:
        extract_zip_safely(source, dest=dest, limits=limits)
    assert caught.value.code == code, caught.value.message
    assert not os.path.lexists(dest)
    assert list(out.iterdir()) == []  # no temporary folder left behind
    assert str(out) not in caught.value.message
    return caught.value


# --- UnsafeInput


def test_unsafe_input_carries_code_and_message_and_pickles():
    error = UnsafeInput("zip_slip", "The zip entry points outside the folder.")
    assert (error.code, error.message, str(error)) == (
        "zip_slip",
        "The zip entry points outside the folder.",
        "The zip entry points outside the folder.",
    )
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 (Celery pickles exceptions)
    assert (again.code, again.message) == (error.code, error.message)


def test_module_uses_the_standard_library_only():
    tree = ast.parse(Path(safe_io.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# --- resolve_under_roots


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    first, second = tmp_path / "r1", tmp_path / "r2"
    (first / "shared").mkdir(parents=True)
    (second / "shared").mkdir(parents=True)
    (second / "only_second" / "nested").mkdir(parents=True)
    (first / "file.txt").write_text("x")
    (tmp_path / "outside").mkdir()
    return [first, second]


def refused(code: str, path: str, roots: list[Path]) -> UnsafeInput:
    with pytest.raises(UnsafeInput) as caught:
        resolve_under_roots(path, roots=roots)
    assert caught.value.code == code, caught.value.message
    assert "/" not in caught.value.message  # no server path in the message
    return caught.value


def test_relative_path_found_in_the_second_root(roots):
    assert resolve_under_roots("only_second", roots=roots) == (roots[1] / "only_second").resolve()
    nested = resolve_under_roots("only_second/nested", roots=roots)
    assert nested == (roots[1] / "only_second" / "nested").resolve()


def test_relative_path_first_root_wins(roots):
    assert resolve_under_roots("shared", roots=roots) == (roots[0] / "shared").resolve()


def test_absolute_path_inside_a_root(roots):
    path = str(roots[1] / "only_second")
    assert resolve_under_roots(path, roots=roots) == (roots[1] / "only_second").resolve()
    assert resolve_under_roots(str(roots[0]), roots=roots) == roots[0].resolve()


def test_absolute_path_outside_every_root(roots, tmp_path):
    refused("path_outside_root", str(tmp_path / "outside"), roots)
    refused("path_outside_root", "/etc", roots)
    refused("path_outside_root", str(tmp_path / "r1x"), roots)  # a sibling sharing a prefix


@pytest.mark.parametrize(
    "path", ["..", "../outside", "shared/../shared", "shared/..", "..\\outside", "a/../../x"]
)
def test_dot_dot_is_refused_even_when_it_stays_inside(roots, path):
    refused("path_traversal", path, roots)


def test_dot_dot_in_an_absolute_path_is_refused(roots):
    refused("path_traversal", str(roots[0] / ".." / "r1" / "shared"), roots)


@pytest.mark.parametrize("path", ["", "   "])
def test_empty_path(roots, path):
    refused("path_empty", path, roots)


def test_nul_byte(roots):
    refused("path_invalid", "shared\x00/etc", roots)


def test_symlink_leaving_the_root_is_refused(roots, tmp_path):
    (roots[0] / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    refused("path_outside_root", "escape", roots)
    refused("path_outside_root", str(roots[0] / "escape"), roots)


def test_symlink_inside_the_root_is_followed(roots):
    (roots[0] / "alias").symlink_to(roots[0] / "shared", target_is_directory=True)
    assert resolve_under_roots("alias", roots=roots) == (roots[0] / "shared").resolve()


def test_root_that_is_itself_a_symlink(roots, tmp_path):
    link = tmp_path / "root_link"
    link.symlink_to(roots[0], target_is_directory=True)
    expected = (roots[0] / "shared").resolve()
    assert resolve_under_roots("shared", roots=[link]) == expected
    assert resolve_under_roots(str(link / "shared"), roots=[link]) == expected
    assert resolve_under_roots(str(roots[0] / "shared"), roots=[link]) == expected


def test_not_found(roots):
    refused("path_not_found", "missing", roots)
    refused("path_not_found", str(roots[0] / "missing"), roots)


def test_dangling_symlink_is_not_found(roots, tmp_path):
    (roots[0] / "dangling").symlink_to(roots[0] / "gone")
    refused("path_not_found", "dangling", roots)


def test_not_a_directory(roots):
    refused("path_not_directory", "file.txt", roots)


def test_no_roots_configured():
    refused("roots_not_configured", "shared", [])


# --- iter_files_under


def test_iter_files_sorted_skips_hidden_and_outside_symlinks(tmp_path):
    root, outside = tmp_path / "ds", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    (root / "c").mkdir()
    (root / ".git").mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    for name in ["z.txt", "b.txt", "a/2.txt", "a/1.txt", "a/10.txt", ".hidden", ".git/config"]:
        (root / name).write_text(name)
    (root / "c" / ".DS_Store").write_text("x")
    (root / "link_in").symlink_to(root / "b.txt")
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)
    (root / "dir_in").symlink_to(root / "a", target_is_directory=True)  # not walked twice
    (root / "dangling").symlink_to(root / "gone")
    os.mkfifo(root / "fifo")

    found = [p.relative_to(root).as_posix() for p in iter_files_under(root, max_files=100)]

    assert found == ["a/1.txt", "a/10.txt", "a/2.txt", "b.txt", "link_in", "z.txt"]


def test_iter_files_too_many(tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text("x")
    assert len(list(iter_files_under(tmp_path, max_files=5))) == 5
    with pytest.raises(UnsafeInput) as caught:
        list(iter_files_under(tmp_path, max_files=4))
    assert caught.value.code == "too_many_files"


def test_iter_files_is_lazy(tmp_path):
    for d in range(3):
        (tmp_path / f"d{d}").mkdir()
        for i in range(10):
            (tmp_path / f"d{d}" / f"{i:02}.txt").write_text("x")
    walker = iter_files_under(tmp_path, max_files=5)
    first = list(itertools.islice(walker, 5))  # the 6th file is never looked at
    assert [p.name for p in first] == ["00.txt", "01.txt", "02.txt", "03.txt", "04.txt"]


def test_iter_files_root_must_be_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UnsafeInput) as caught:
        list(iter_files_under(tmp_path / "f", max_files=5))
    assert caught.value.code == "path_not_directory"


# --- extract_zip_safely: success


def test_valid_zip_with_nested_folders_extracts_exactly_its_files(tmp_path, out):
    data = build_zip(
        [
            ("images/", b""),
            ("images/train/0001.bmp", b"B" * 300),
            ("images/test/0002.bmp", b"C" * 10),
            ("labels/0001.txt", b"1,2\n3,4\n"),
            ("README.md", b"readme"),
            ("empty.txt", b""),
            ("__MACOSX/images/._0001.bmp", b"resource fork"),
            (".DS_Store", b"x"),
            ("labels/.hidden/x.txt", b"x"),
        ]
    )
    dest = out / "dataset"
    files = extract_zip_safely(write(tmp_path, data), dest=dest)

    expected = [
        "README.md",
        "empty.txt",
        "images/test/0002.bmp",
        "images/train/0001.bmp",
        "labels/0001.txt",
    ]
    assert [p.relative_to(dest).as_posix() for p in files] == expected
    on_disk = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert on_disk == expected
    assert (dest / "images/train/0001.bmp").read_bytes() == b"B" * 300
    assert (dest / "labels/0001.txt").read_bytes() == b"1,2\n3,4\n"
    assert [p.name for p in out.iterdir()] == ["dataset"]  # the temporary folder is gone


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_other_compression_methods(tmp_path, out, compression):
    data = build_zip([("a/b.txt", b"hello " * 50)], compression=compression)
    files = extract_zip_safely(io.BytesIO(data), dest=out / "dataset")
    assert [f.read_bytes() for f in files] == [b"hello " * 50]


def test_backslash_names_become_folders(out):
    files = extract_zip_safely(io.BytesIO(build_zip([("a\\b.txt", b"x")])), dest=out / "d")
    assert files == [out / "d" / "a" / "b.txt"]


def test_small_highly_compressible_files_pass_the_ratio_check(out):
    data = build_zip([("zeros.bin", b"\0" * 100_000)])  # ratio ~ 1000, but only 100 kB
    files = extract_zip_safely(io.BytesIO(data), dest=out / "d", limits=ZipLimits())
    assert files[0].stat().st_size == 100_000


def test_zip64_end_records_are_walked(out, monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # force zip64 end records
    data = build_zip([("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")])
    monkeypatch.undo()
    assert b"PK\x06\x06" in data
    assert_refused("zip_too_many_entries", data, out, ZipLimits(max_entries=2))
    assert len(extract_zip_safely(io.BytesIO(data), dest=out / "d", limits=ZipLimits())) == 3


def test_missing_parent_is_created(tmp_path):
    data = build_zip([("a.txt", b"a")])
    files = extract_zip_safely(io.BytesIO(data), dest=tmp_path / "new" / "parent" / "d")
    assert files == [tmp_path / "new" / "parent" / "d" / "a.txt"]


# --- extract_zip_safely: refusals


def test_dest_exists(tmp_path, out):
    dest = out / "dataset"
    dest.mkdir()
    (dest / "keep.txt").write_text("keep")
    with pytest.raises(UnsafeInput) as caught:
        extract_zip_safely(io.BytesIO(build_zip([("a.txt", b"a")])), dest=dest)
    assert caught.value.code == "dest_exists"
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert [p.name for p in out.iterdir()] == ["dataset"]


def test_zip_too_large(tmp_path, out):
    data = build_zip([("a.txt", b"a" * 1000)], compression=zipfile.ZIP_STORED)
    limits = ZipLimits(max_archive_bytes=len(data) - 1)
    assert_refused("zip_too_large", write(tmp_path, data), out, limits)
    assert_refused("zip_too_large", data, out, limits)


@pytest.mark.parametrize(
    "data",
    [b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 100],
    ids=["empty", "text", "local-header-only"],
)
def test_zip_invalid_not_a_zip(tmp_path, out, data):
    assert_refused("zip_invalid", write(tmp_path, data), out)


def test_zip_invalid_truncated(out):
    data = build_zip([("a.txt", b"a" * 100)])
    assert_refused("zip_invalid", data[:-30], out)
    assert_refused("zip_invalid", data[len(data) // 2 :], out)


def test_zip_invalid_bad_crc(out):
    data = bytearray(build_zip([("a.txt", b"good"), ("b.txt", b"data")], zipfile.ZIP_STORED))
    data[30 + len("a.txt") + len(b"good") + 30 + len("b.txt")] ^= 0xFF  # b.txt's first byte
    error = assert_refused("zip_invalid", bytes(data), out)  # a.txt was written, then removed
    assert "b.txt" in error.message


def test_zip_invalid_corrupt_deflate_stream(out):
    data = bytearray(build_zip([("a.txt", os.urandom(2000))]))
    data[30 + len("a.txt") : 30 + len("a.txt") + 8] = b"\xff" * 8
    assert_refused("zip_invalid", bytes(data), out)


def test_zip_invalid_declared_size_larger_than_the_data(out):
    data = patch_headers(build_zip([("a.txt", b"a" * 100)]), file_size=lambda old: old + 50)
    assert_refused("zip_invalid", data, out)


def test_zip_invalid_when_not_seekable(out):
    class Pipe(io.RawIOBase):
        def seekable(self) -> bool:
            return False

    assert_refused("zip_invalid", Pipe(), out)  # type: ignore[arg-type]


def test_zip_encrypted(out):
    data = build_zip([("a.txt", b"a"), ("secret.txt", b"s")])
    data = patch_headers(data, only="secret.txt", flag_bits=lambda old: old | 0x1)
    assert_refused("zip_encrypted", data, out)


def test_zip_too_many_entries(out):
    data = build_zip([(f"f{i}.txt", b"x") for i in range(4)])
    assert_refused("zip_too_many_entries", data, out, ZipLimits(max_entries=3))
    assert len(extract_zip_safely(io.BytesIO(data), dest=out / "d", limits=ZipLimits())) == 4


def test_zip_too_many_entries_is_refused_before_zipfile_parses_the_directory(out, monkeypatch):
    data = build_zip([(f"f{i}.txt", b"x") for i in range(50)])

    def never(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile must not build 50 ZipInfo objects first")

    monkeypatch.setattr(safe_io.zipfile, "ZipFile", never)
    assert_refused("zip_too_many_entries", data, out, ZipLimits(max_entries=10))


def test_prefix_data_and_archive_comment_are_tolerated(out):
    buf = io.BytesIO()
    buf.write(b"#!/bin/sh self-extractor stub\n" * 10)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"an archive comment " * 20
        zf.writestr("a/b.txt", b"hello")
    files = extract_zip_safely(io.BytesIO(buf.getvalue()), dest=out / "d")
    assert [f.read_bytes() for f in files] == [b"hello"]


def test_zip_too_many_entries_counts_directories_and_skipped_names(out):
    data = build_zip([("a/", b""), ("__MACOSX/x", b"x"), (".x", b"x"), ("a/b", b"b")])
    assert_refused("zip_too_many_entries", data, out, ZipLimits(max_entries=3))


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "/etc/passwd",
        "a/../../b",
        "a/b/../../../c",
        "C:\\x",
        "C:/x",
        "c:x",
        "a\\..\\..\\b",
        "\\\\server\\share\\x",
        "\\evil.txt",
        "..",
        ".",
    ],
)
def test_zip_slip(out, name):
    data = build_zip([("ok.txt", b"fine"), (name, b"evil")])
    assert_refused("zip_slip", data, out)


def test_zip_slip_on_a_directory_entry(out):
    assert_refused("zip_slip", build_zip([("../up/", b""), ("a.txt", b"a")]), out)


def test_zip_symlink(out):
    link = zipfile.ZipInfo("link")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    assert_refused("zip_symlink", build_zip([("a.txt", b"a"), (link, b"/etc/passwd")]), out)


def test_zip_bomb_declared_entry_size(out):
    data = build_zip([("big.bin", os.urandom(2000))])
    assert_refused("zip_bomb", data, out, ZipLimits(max_entry_uncompressed=1999))


def test_zip_bomb_declared_total_size(out):
    data = build_zip([(f"f{i}.bin", os.urandom(1000)) for i in range(3)])
    assert_refused("zip_bomb", data, out, ZipLimits(max_total_uncompressed=2999))


def test_zip_bomb_declared_ratio(out):
    data = build_zip([("zeros.bin", b"\0" * 100_000)])
    assert_refused("zip_bomb", data, out, ZipLimits(max_ratio=50, ratio_min_bytes=0))


def test_zip_bomb_lying_entry_size_is_caught_while_streaming(out):
    """The headers say 10 bytes; the data inflates to 200 kB, past the 50 kB limit."""
    data = patch_headers(build_zip([("bomb.bin", b"\0" * 200_000)]), file_size=lambda _: 10)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("bomb.bin").file_size == 10
    limits = ZipLimits(max_entry_uncompressed=50_000)
    assert "expands past the limits" in assert_refused("zip_bomb", data, out, limits).message


def test_zip_bomb_lying_total_is_caught_while_streaming(out):
    """60 kB honest, then 45 kB that claims 10 bytes: past the 100 kB total mid-stream."""
    entries = [("honest.bin", b"\0" * 60_000), ("liar.bin", b"\0" * 45_000)]
    data = patch_headers(build_zip(entries), only="liar.bin", file_size=lambda _: 10)
    limits = ZipLimits(max_entry_uncompressed=70_000, max_total_uncompressed=100_000)
    assert_refused("zip_bomb", data, out, limits)


def test_zip_bomb_lying_ratio_is_caught_while_streaming(out):
    data = patch_headers(build_zip([("bomb.bin", b"\0" * 200_000)]), file_size=lambda _: 10)
    assert_refused("zip_bomb", data, out, ZipLimits(max_ratio=100, ratio_min_bytes=0))


def test_zip_bomb_overlapping_entries(out):
    """a.txt's compressed data claims to run over b.txt's local header (the shape of
    the overlapped-files bomb, where every entry re-inflates the same kernel)."""
    data = build_zip([("a.txt", b"a" * 100), ("b.txt", b"b" * 100)], zipfile.ZIP_STORED)
    data = patch_headers(data, only="a.txt", compress_size=lambda old: old + 30)
    try:
        zipfile.ZipFile(io.BytesIO(data)).close()
        expected = "zip_bomb"
    except zipfile.BadZipFile:
        expected = "zip_invalid"  # newer Pythons refuse overlaps in zipfile itself
    assert_refused(expected, data, out)


@pytest.mark.parametrize(
    "names",
    [
        ["a.txt", "a.txt"],
        ["data/A.txt", "data/a.txt"],
        ["a\\b.txt", "a/b.txt"],
        ["a//b.txt", "a/./b.txt"],
        ["caf\u00e9.txt", "cafe\u0301.txt"],
        ["a", "a/b.txt"],
    ],
)
def test_zip_duplicate_entry(out, names):
    assert_refused("zip_duplicate_entry", build_zip([(n, b"x") for n in names]), out)


def test_failure_after_some_files_were_written_leaves_nothing(out):
    entries = [(f"ok{i}.txt", b"fine") for i in range(3)] + [("bomb.bin", b"\0" * 200_000)]
    data = patch_headers(build_zip(entries), only="bomb.bin", file_size=lambda _: 10)
    assert_refused("zip_bomb", data, out, ZipLimits(max_entry_uncompressed=50_000))
