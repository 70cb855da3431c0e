"""Writing a de-identified header without re-encoding what it keeps unchanged.

pydicom's writer spends about 50 µs on every element (a buffer per element, and the
ambiguous-VR pass over a dataset that was not read from a file), which was most of
the door's de-identification. Here an element the copy keeps as it was is copied as
the original file's bytes (tag, VR, length, value: valid as they are, since the copy
keeps the transfer syntax and the character set), and only the elements the copy
changes or adds (UIDs, the pseudonym, the emptied attributes, the sequences, the file
meta group) go through pydicom's element writer. numpy-, Django- and torch-free.
"""

from __future__ import annotations

import io
import struct

import pydicom
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import UID
from pydicom.valuerep import PersonName

from mahtqa.imaging._walk import _LONG_VRS

Buffer = bytes | bytearray | memoryview
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF


def raw_span(elem: DataElement, raw: Buffer, *, implicit: bool) -> tuple[int, int] | None:
    """Where a top-level element read from ``raw`` lies in it (tag to end of value), or
    None when that cannot be told for sure (then the element is written anew)."""
    tell = getattr(elem, "file_tell", None)
    if tell is None or elem.VR == "SQ" or elem.tag == _PIXEL_DATA:
        return None
    tag = struct.pack("<HH", elem.tag.group, elem.tag.element)
    # Implicit VR: tag, 4-byte length. Explicit: tag, VR, 2-byte length, or tag, a long
    # VR, 2 reserved bytes, 4-byte length.
    for header in (8,) if implicit else (8, 12):
        begin = tell - header
        if begin < 0 or bytes(raw[begin : begin + 4]) != tag:
            continue
        if implicit:
            length = struct.unpack_from("<I", raw, begin + 4)[0]
        elif (bytes(raw[begin + 4 : begin + 6]) in _LONG_VRS) != (header == 12):
            continue
        elif header == 8:
            length = struct.unpack_from("<H", raw, begin + 6)[0]
        else:
            length = struct.unpack_from("<I", raw, begin + 8)[0]
        if length == _UNDEFINED or length % 2 or tell + length > len(raw):
            return None
        return begin, tell + length
    return None


def dataset_write(ds: Dataset, *, ts: UID) -> bytes:
    """The Part-10 bytes of ``ds`` in transfer syntax ``ts``, by pydicom's writer alone."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(
        buffer,
        ds,
        implicit_vr=ts.is_implicit_VR,
        little_endian=ts.is_little_endian,
        enforce_file_format=True,
    )
    return buffer.getvalue()


def header_write(dst: Dataset, *, src: Dataset, raw: Buffer, ts: UID) -> bytes:
    """The Part-10 bytes of ``dst`` (preamble, file meta, dataset) in the little-endian,
    non-deflated transfer syntax ``ts`` that ``src`` was read from ``raw`` in. An
    element of ``dst`` that is the very element object of ``src`` is copied from
    ``raw``; every other one is encoded by pydicom, as ``dcmwrite`` would."""
    if not ts.is_little_endian or ts.is_deflated:
        raise ValueError("only little-endian, non-deflated transfer syntaxes")
    implicit = ts.is_implicit_VR
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, dst.file_meta, enforce_standard=True)
    out.is_implicit_VR = implicit
    encodings = dst.get("SpecificCharacterSet", default_encoding)
    for tag in sorted(dst.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written (PS3.5 7.2), as in pydicom
        elem = dst[tag]
        span = raw_span(elem, raw, implicit=implicit) if src.get(tag) is elem else None
        if span is not None:
            out.write(raw[span[0] : span[1]])
        elif (short := _short_text(elem, implicit=implicit)) is not None:
            out.write(short)
        else:
            write_data_element(out, elem, encodings)
    return out.getvalue()


# Text VRs with a 2-byte length in explicit VR, and the byte each is padded with.
_SHORT_TEXT_PAD = {"AE": b" ", "CS": b" ", "DA": b" ", "LO": b" ", "PN": b" ", "SH": b" ",
                   "TM": b" ", "UI": b"\x00"}  # fmt: skip


def _short_text(elem: DataElement, *, implicit: bool) -> bytes | None:
    """One ASCII value of a short text VR, encoded as pydicom's writer encodes it (ASCII
    is the same bytes in every DICOM character set); None for anything else."""
    pad = _SHORT_TEXT_PAD.get(elem.VR)
    value = "" if elem.value is None else elem.value
    if type(value) is PersonName:
        value = str(value)
    if pad is None or type(value) is not str or not value.isascii() or "\\" in value:
        return None
    encoded = value.encode("ascii")
    if len(encoded) % 2:
        encoded += pad
    if len(encoded) > 0xFFFF:
        return None
    tag = struct.pack("<HH", elem.tag.group, elem.tag.element)
    if implicit:
        return tag + struct.pack("<I", len(encoded)) + encoded
    return tag + elem.VR.encode("ascii") + struct.pack("<H", len(encoded)) + encoded
