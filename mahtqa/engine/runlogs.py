"""Reading existing training logs into metric rows ``{"step": n, name: value, ...}``:
CSV logs (Lightning's ``CSVLogger`` ``metrics.csv``: a ``step`` column, one column per
metric, empty cells where a metric was not logged) and TensorBoard event files
(``events.out.tfevents.*``: TFRecord framing around ``Event`` protocol buffers; scalar
summaries, both the legacy ``simple_value`` and the tensor form). Standard library only:
the record framing and the few protobuf fields needed are decoded here, with the
CRC32C checks of the TFRecord format.
"""

from __future__ import annotations

import csv
import math
import struct
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

MAX_ROWS = 2_000_000


class LogError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        out.append(c)
    return out


_CRC = _table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return ((c >> 15 | c << 17) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise LogError("log_invalid", "A protocol buffer varint is cut short.")
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise LogError("log_invalid", f"Unsupported protobuf wire type {wire}.")
        yield number, wire, value


def _packed(v: bytes, wire: int, fmt: str, size: int) -> list[float]:
    if wire == 2:  # packed repeated
        return [struct.unpack(fmt, v[j : j + size])[0] for j in range(0, len(v), size)]
    return [struct.unpack(fmt, v)[0]]


def _tensor_scalar(buf: bytes) -> float | None:
    """A TensorProto holding one float/double (dtype 1 float, 2 double)."""
    dtype, content, floats, doubles = 0, b"", [], []
    for n, wire, v in _fields(buf):
        if n == 1 and wire == 0:
            dtype = int(v)  # type: ignore[arg-type]
        elif n == 4 and wire == 2:
            content = v  # type: ignore[assignment]
        elif n == 5:
            floats += _packed(v, wire, "<f", 4)  # type: ignore[arg-type]
        elif n == 6:
            doubles += _packed(v, wire, "<d", 8)  # type: ignore[arg-type]
    if floats or doubles:
        return (floats or doubles)[0]
    if content and dtype == 1 and len(content) >= 4:
        return struct.unpack("<f", content[:4])[0]
    if content and dtype == 2 and len(content) >= 8:
        return struct.unpack("<d", content[:8])[0]
    return None


def _event(buf: bytes) -> tuple[int, dict[str, float]]:
    step, values = 0, {}
    for n, _, v in _fields(buf):
        if n == 2:
            step = int(v)  # type: ignore[arg-type]
        elif n == 5:  # Summary
            for sn, _, sv in _fields(v):  # type: ignore[arg-type]
                if sn != 1:
                    continue
                tag, value = "", None
                for vn, vw, vv in _fields(sv):  # type: ignore[arg-type]
                    if vn == 1:
                        tag = bytes(vv).decode("utf-8", "replace")  # type: ignore[arg-type]
                    elif vn == 2 and vw == 5:
                        value = struct.unpack("<f", vv)[0]  # type: ignore[arg-type]
                    elif vn == 8 and vw == 2:
                        value = _tensor_scalar(vv)  # type: ignore[arg-type]
                if tag and value is not None:
                    values[tag] = value
    return step, values


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    i = 0
    while i < len(data):
        if i + 12 > len(data):
            raise LogError("log_truncated", f"{path.name}: a record header is cut short.")
        header = data[i : i + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[i + 8 : i + 12])
        if masked_crc(header) != crc:
            raise LogError("log_invalid", f"{path.name}: bad record length checksum at byte {i}.")
        body = data[i + 12 : i + 12 + length]
        if len(body) < length or i + 16 + length > len(data):
            raise LogError("log_truncated", f"{path.name}: a record is cut short.")
        (crc,) = struct.unpack("<I", data[i + 12 + length : i + 16 + length])
        if masked_crc(body) != crc:
            raise LogError("log_invalid", f"{path.name}: bad record data checksum at byte {i}.")
        yield body
        i += 16 + length


def _merge(pairs: Iterator[tuple[int, dict[str, float]]]) -> list[dict]:
    by_step: dict[int, dict[str, float]] = defaultdict(dict)
    for step, values in pairs:
        if values:
            by_step[step].update(values)
        if len(by_step) > MAX_ROWS:
            raise LogError("log_too_large", f"More than {MAX_ROWS} steps.")
    return [{"step": s, **v} for s, v in sorted(by_step.items())]


def read_tensorboard(path: Path) -> list[dict]:
    """Scalar rows of an event file, or of every ``events.out.tfevents.*`` in a folder."""
    path = Path(path)
    files = sorted(path.rglob("events.out.tfevents.*")) if path.is_dir() else [path]
    if not files:
        raise LogError("log_not_found", "No TensorBoard event file (events.out.tfevents.*) found.")
    return _merge(_event(r) for f in files for r in _records(f))


def _number(text: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise LogError("log_invalid", f"{text[:20]!r} is not a number.") from None


def read_csv_log(path: Path) -> list[dict]:
    """Rows of a CSV log with a ``step`` column (``epoch`` is kept as a metric)."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if "step" not in (reader.fieldnames or ()):
                raise LogError("log_invalid", "The CSV log has no 'step' column.")

            def pairs() -> Iterator[tuple[int, dict[str, float]]]:
                for row in reader:
                    step = _number(row.get("step", ""))
                    if step is None or not math.isfinite(step):
                        continue
                    values = {
                        k: v
                        for k, v in ((k, _number(x)) for k, x in row.items() if k and k != "step")
                        if v is not None
                    }
                    yield int(step), values

            return _merge(pairs())
    except UnicodeDecodeError:
        raise LogError("log_invalid", "The CSV log is not UTF-8 text.") from None


def read_log(path: Path, *, fmt: str = "") -> list[dict]:
    """``fmt``: "csv", "tensorboard" or "" (from the name)."""
    path = Path(path)
    if not fmt:
        fmt = "csv" if path.suffix.lower() == ".csv" else "tensorboard"
    if fmt == "csv":
        return read_csv_log(path)
    if fmt == "tensorboard":
        return read_tensorboard(path)
    raise LogError("invalid_format", "format is csv or tensorboard.")
