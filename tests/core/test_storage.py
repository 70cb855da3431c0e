"""storage_write_parts: one file from parts, never overwriting, nothing left on failure."""

from __future__ import annotations

import os

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from apps.core.storage import PhiStorage, _writev_all, storage_write_parts


def test_parts_are_written_in_order_into_a_new_file(tmp_path):
    storage = FileSystemStorage(location=tmp_path)
    data = os.urandom(3 * 1024 * 1024)
    view = memoryview(data)
    name = storage_write_parts(
        storage=storage, name="a/b/c.dcm", parts=[b"HEAD", view[10:], b"", view[:10]]
    )
    assert name == "a/b/c.dcm"
    assert (tmp_path / "a/b/c.dcm").read_bytes() == b"HEAD" + data[10:] + data[:10]


def test_an_existing_name_gets_a_new_one_and_the_old_file_is_kept(tmp_path):
    storage = FileSystemStorage(location=tmp_path)
    first = storage_write_parts(storage=storage, name="x.dcm", parts=[b"one"])
    second = storage_write_parts(storage=storage, name="x.dcm", parts=[b"two"])
    assert first == "x.dcm"
    assert second != first
    assert storage.open(first).read() == b"one"
    assert storage.open(second).read() == b"two"


def test_modes_of_the_storage_are_applied(tmp_path):
    storage = PhiStorage(
        location=tmp_path, file_permissions_mode=0o600, directory_permissions_mode=0o700
    )
    name = storage_write_parts(storage=storage, name="d/e.dcm", parts=[b"phi"])
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700


def test_a_name_outside_the_storage_is_refused_and_nothing_written(tmp_path):
    storage = FileSystemStorage(location=tmp_path / "inside")
    with pytest.raises(Exception, match="outside|Detected path traversal"):
        storage_write_parts(storage=storage, name="../escape.dcm", parts=[b"x"])
    assert not (tmp_path / "escape.dcm").exists()


def test_a_failed_write_leaves_no_file(tmp_path):
    storage = FileSystemStorage(location=tmp_path)

    class Broken:  # len() works, the buffer protocol does not
        def __len__(self) -> int:
            return 1

    with pytest.raises(TypeError):
        storage_write_parts(storage=storage, name="f.dcm", parts=[b"ok", Broken()])
    assert list(tmp_path.rglob("*")) == []


def test_other_storages_get_the_joined_bytes():
    storage = InMemoryStorage()
    name = storage_write_parts(storage=storage, name="m.dcm", parts=[b"ab", memoryview(b"cd")])
    assert storage.open(name).read() == b"abcd"


def test_short_writes_are_continued(tmp_path, monkeypatch):
    """os.writev may write less than asked: the rest is written, nothing twice."""
    calls = []
    real = os.writev

    def short(fd, views):
        calls.append(sum(len(v) for v in views))
        first = bytes(views[0])[:3] if len(views[0]) > 3 else bytes(views[0])
        return real(fd, [first])  # at most 3 bytes per call

    monkeypatch.setattr(os, "writev", short)
    path = tmp_path / "s.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        _writev_all(fd, [memoryview(b"abcdefg"), memoryview(b"hij")])
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abcdefghij"
    assert len(calls) == 4


def _o_direct_works(folder) -> bool:
    probe = os.path.join(folder, ".o_direct_probe")
    import mmap

    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        buf = mmap.mmap(-1, 4096)
        os.write(fd, buf)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(probe)


@pytest.mark.parametrize("tail", [0, 1, 4095, 4097])
def test_a_large_file_goes_to_the_device_directly_byte_for_byte(tmp_path, settings, tail):
    from apps.core.storage import DIRECT_MIN_BYTES, file_write

    settings.MAHTQA_STORAGE_DIRECT_IO = True
    data = os.urandom(DIRECT_MIN_BYTES + 3 * 4096 + tail)
    view = memoryview(data)
    parts = [view[:133], view[133 : 4096 + 7], view[4096 + 7 :]]
    mode = file_write(path=str(tmp_path / "big.dcm"), flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                      views=parts)  # fmt: skip
    assert mode == ("direct" if _o_direct_works(tmp_path) else "buffered")
    assert (tmp_path / "big.dcm").read_bytes() == data  # padding cut back exactly
    # the per-thread buffer is reused: a smaller file after a larger one is exact too
    small = os.urandom(DIRECT_MIN_BYTES + 5)
    file_write(path=str(tmp_path / "next.dcm"), flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL,
               views=[memoryview(small)])  # fmt: skip
    assert (tmp_path / "next.dcm").read_bytes() == small


@pytest.mark.parametrize(("direct_io", "sync"), [(False, True), (True, False), (False, False)])
def test_buffered_and_unsynced_writes_are_exact_too(tmp_path, settings, direct_io, sync):
    from apps.core.storage import DIRECT_MIN_BYTES, file_write

    settings.MAHTQA_STORAGE_DIRECT_IO, settings.MAHTQA_STORAGE_SYNC = direct_io, sync
    data = os.urandom(DIRECT_MIN_BYTES + 11)
    mode = file_write(path=str(tmp_path / "f.dcm"), flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                      views=[memoryview(data)])  # fmt: skip
    assert mode == ("direct" if direct_io and _o_direct_works(tmp_path) else "buffered")
    assert (tmp_path / "f.dcm").read_bytes() == data


def test_small_files_are_written_buffered(tmp_path, settings):
    from apps.core.storage import file_write

    settings.MAHTQA_STORAGE_DIRECT_IO = True
    mode = file_write(path=str(tmp_path / "s.dcm"), flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                      views=[memoryview(b"header only")])  # fmt: skip
    assert mode == "buffered"
    assert (tmp_path / "s.dcm").read_bytes() == b"header only"


def test_an_existing_file_is_never_overwritten_by_a_direct_write(tmp_path, settings):
    from apps.core.storage import DIRECT_MIN_BYTES, file_write

    settings.MAHTQA_STORAGE_DIRECT_IO = True
    (tmp_path / "taken.dcm").write_bytes(b"first")
    with pytest.raises(FileExistsError):
        file_write(path=str(tmp_path / "taken.dcm"), flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                   views=[memoryview(os.urandom(DIRECT_MIN_BYTES))])  # fmt: skip
    assert (tmp_path / "taken.dcm").read_bytes() == b"first"


def test_a_file_over_the_kept_buffer_size_is_exact_and_its_buffer_dropped(tmp_path, settings):
    from apps.core import storage as module

    settings.MAHTQA_STORAGE_DIRECT_IO = True
    big = os.urandom(module.KEEP_BUFFER_BYTES + 4096 + 3)
    module.file_write(path=str(tmp_path / "big.dcm"), flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                      views=[memoryview(big)])  # fmt: skip
    assert (tmp_path / "big.dcm").read_bytes() == big
    if _o_direct_works(tmp_path):
        assert getattr(module._local, "buffer", None) is None  # not kept for the next file


def test_new_date_folders_are_created_and_the_file_is_exact(tmp_path, settings):
    settings.MAHTQA_STORAGE_SYNC = True
    storage = FileSystemStorage(location=tmp_path)
    data = os.urandom(2 * 1024 * 1024 + 5)
    name = storage_write_parts(storage=storage, name="2026/12/03/x.dcm", parts=[data])
    assert (tmp_path / name).read_bytes() == data
