"""A byte-level walk over a Part-10 file's element structure.

pydicom stops silently at the last complete element of a cut file, so a file
cut in half can look like a valid dataset without pixel data. This walk skips
over every element value (defined or undefined length, sequences, items,
encapsulated fragments) and reports whether the bytes end where the structure
says they should. It never decodes values and never allocates per element.
"""

from __future__ import annotations

import struct

_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_KNOWN_VRS = _LONG_VRS | frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT"}
    | {b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
_UNDEFINED = 0xFFFFFFFF
_ITEM = (0xFFFE, 0xE000)
_ITEM_END = (0xFFFE, 0xE00D)
_SEQ_END = (0xFFFE, 0xE0DD)
_MAX_DEPTH = 64


class Truncated(Exception):
    """The structure runs past the end of the bytes."""


class Malformed(Exception):
    """The structure cannot be walked (nonsense lengths, too deep)."""


class _Walker:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = data
        self.size = len(data)

    def _need(self, pos: int, n: int) -> None:
        if pos + n > self.size:
            raise Truncated(f"needed {n} bytes at offset {pos}, file has {self.size}")

    def _tag(self, pos: int, little: bool) -> tuple[int, int]:
        self._need(pos, 4)
        return struct.unpack_from("<HH" if little else ">HH", self.data, pos)

    def _u32(self, pos: int, little: bool) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<I" if little else ">I", self.data, pos)[0]

    def _u16(self, pos: int, little: bool) -> int:
        self._need(pos, 2)
        return struct.unpack_from("<H" if little else ">H", self.data, pos)[0]

    def element(self, pos: int, implicit: bool, little: bool, depth: int) -> tuple[int, int]:
        """Skip one element; return (new position, group)."""
        group, _elem = self._tag(pos, little)
        if implicit or group == 0xFFFE:
            length = self._u32(pos + 4, little)
            vr = b"SQ" if length == _UNDEFINED else b"??"
            pos += 8
        else:
            self._need(pos + 4, 2)
            vr = bytes(self.data[pos + 4 : pos + 6])  # hashable, whatever the buffer
            if vr in _LONG_VRS:
                length = self._u32(pos + 8, little)
                pos += 12
            else:
                length = self._u16(pos + 6, little)
                pos += 8
        if length == _UNDEFINED:
            # UN of undefined length holds an implicit VR little endian sequence.
            if vr == b"UN":
                implicit, little = True, True
            return self.items(pos, implicit, little, depth + 1), group
        self._need(pos, length)
        return pos + length, group

    def items(self, pos: int, implicit: bool, little: bool, depth: int) -> int:
        """Skip items up to and including the sequence delimiter."""
        if depth > _MAX_DEPTH:
            raise Malformed("sequences nested too deep")
        while True:
            tag = self._tag(pos, little)
            length = self._u32(pos + 4, little)
            pos += 8
            if tag == _SEQ_END:
                return pos
            if tag != _ITEM:
                raise Malformed(f"expected an item tag at offset {pos - 8}")
            if length == _UNDEFINED:
                pos = self.dataset_until_item_end(pos, implicit, little, depth)
            else:
                self._need(pos, length)
                pos += length

    def dataset_until_item_end(self, pos: int, implicit: bool, little: bool, depth: int) -> int:
        while True:
            if self._tag(pos, little) == _ITEM_END:
                self._need(pos, 8)
                return pos + 8
            pos, _group = self.element(pos, implicit, little, depth)


def meta_end(data: bytes) -> int:
    """Offset just after the file meta group (explicit VR little endian, group 2)."""
    walker = _Walker(data)
    pos = 132
    while pos < walker.size:
        group, _elem = walker._tag(pos, True)
        if group != 0x0002:
            return pos
        pos, _group = walker.element(pos, False, True, 0)
    return pos


def _looks_like_vr(two: bytes) -> bool:
    return len(two) == 2 and all(0x41 <= b <= 0x5A for b in two)


def _sniff_implicit(data: bytes, start: int, declared_implicit: bool) -> bool:
    """Whether the dataset is really implicit VR (pydicom tolerates a wrong declaration)."""
    vr = bytes(data[start + 4 : start + 6])
    if declared_implicit:
        return not (_looks_like_vr(vr) and vr in _KNOWN_VRS)
    return not _looks_like_vr(vr)


_PIXEL_DATA = (0x7FE0, 0x0010)


def check_complete(
    data: bytes, start: int, *, implicit: bool, little: bool
) -> tuple[int, int, int] | None:
    """Walk the dataset from ``start`` to the end; raise :class:`Truncated` if cut short.

    Returns where the top-level pixel data element lies, ``(begin, value_start, end)``
    (its tag at ``begin``, its value from ``value_start``, the next element at
    ``end``), or None when the dataset has none."""
    walker = _Walker(data)
    implicit = _sniff_implicit(data, start, implicit)
    pos = start
    pixels = None
    while pos < walker.size:
        if walker.size - pos < 8 and not any(data[pos:]):
            return pixels  # a few zero bytes of trailing padding
        begin = pos
        pos, group = walker.element(pos, implicit, little, 0)
        if pixels is None and group == _PIXEL_DATA[0] and walker._tag(begin, little) == _PIXEL_DATA:
            long_header = not implicit and bytes(data[begin + 4 : begin + 6]) in _LONG_VRS
            pixels = (begin, begin + (12 if long_header else 8), pos)
    return pixels
