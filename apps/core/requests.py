"""Facts about the request shared by every app's pages (the client address for audits),
and reading a large request body once (``body_read``)."""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. Behind a trusted proxy, configure it to set REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR") or None


@dataclass(frozen=True)
class Body:
    """A request body read whole, with the SHA-256 taken while it arrived. ``data`` is
    bytes, or under gunicorn a read-only view of this thread's receive buffer, valid
    until the thread's next request (``_receive_buffer``)."""

    data: bytes | memoryview
    sha256: str


class BodyTooLarge(Exception):
    """The body is longer than the caller's limit (nothing more is read)."""


class BodyIncomplete(Exception):
    """The client sent less than its Content-Length and went away."""


READ_PIECE = 1024 * 1024
KEEP_BUFFER_MAX = 64 * 1024 * 1024  # a larger body gets a buffer of its own
_kept = threading.local()


def _receive_buffer(length: int) -> memoryview:
    """A read-only view of the first ``length`` bytes of a buffer to receive a body
    into (``.obj`` is the writable buffer): this thread's kept buffer when it is large
    enough and nothing holds on to it any more, else a new one (kept for the next
    request when at most ``KEEP_BUFFER_MAX``). A fresh 7 MB buffer per request costs its
    page faults and the kernel zeroing every page (perf: a tenth of an intake request's
    CPU); a kept one is already mapped."""
    lease = getattr(_kept, "lease", None)
    if lease is not None:
        # The thread's previous request is over, but Django's and DRF's request objects
        # sit in a reference cycle until the collector runs: let go of their view.
        _kept.lease = None
        with contextlib.suppress(BufferError):  # exported still (numpy, say): kept as is
            lease.release()
    buffer = getattr(_kept, "buffer", None)
    # Held by _kept and this frame (and getrefcount's argument): no view of an earlier
    # body is alive anywhere, so its bytes may be overwritten.
    if buffer is None or len(buffer) < length or sys.getrefcount(buffer) > 3:
        buffer = bytearray(length)
        if length > KEEP_BUFFER_MAX:
            return memoryview(buffer)[:length].toreadonly()
        _kept.buffer = buffer
    view = _kept.lease = memoryview(buffer)[:length].toreadonly()
    return view


def body_read(*, stream: Any, limit: int) -> Body:
    """Read a request body of at most ``limit`` bytes, hashing it piece by piece while
    each piece is still in the CPU cache (a 7 MB body hashed afterwards comes back from
    memory: about 1.6 against 1.0 GB/s here).

    Under gunicorn's sync worker the body is received straight into one buffer of its
    Content-Length (``_gunicorn_body``): its reader hands a large body over through
    two ``BytesIO`` buffers and slices of them, about six copies of every byte (py-spy:
    a fifth of a 7 MB intake request). Any other server, or a body read in part
    before, takes the portable path through ``stream.read``."""
    direct = _gunicorn_body(stream, limit)
    if direct is not None:
        return direct
    digest = hashlib.sha256()
    pieces, size = [], 0
    while size <= limit:
        piece = stream.read(min(READ_PIECE, limit + 1 - size)) if stream is not None else b""
        if not piece:
            break
        digest.update(piece)
        pieces.append(piece)
        size += len(piece)
    if size > limit:
        raise BodyTooLarge(limit)
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return Body(data=data, sha256=digest.hexdigest())


def _gunicorn_body(stream: Any, limit: int) -> Body | None:
    """The body of a gunicorn request with a Content-Length that nobody has read from
    yet, received with ``recv_into``; None when that is not the situation."""
    meta = getattr(stream, "META", None)
    if meta is None or "gunicorn.socket" not in meta:
        return None
    from gunicorn.http.body import Body as GunicornBody
    from gunicorn.http.body import LengthReader

    wsgi_input, sock = meta.get("wsgi.input"), meta["gunicorn.socket"]
    reader = getattr(wsgi_input, "reader", None)
    unreader = getattr(reader, "unreader", None)
    if not (
        isinstance(wsgi_input, GunicornBody)
        and isinstance(reader, LengthReader)
        and wsgi_input.buf.tell() == 0
        and hasattr(unreader, "take_buffered")
        and getattr(stream, "_read_started", False) is False
        and str(reader.length) == str(meta.get("CONTENT_LENGTH"))  # nobody read from it
    ):
        return None
    length = reader.length
    if length > limit:
        raise BodyTooLarge(limit)
    received = _receive_buffer(length)
    view = memoryview(received.obj)[:length]  # writable, for recv_into
    digest = hashlib.sha256()
    ahead = unreader.take_buffered()  # what came in with the headers
    if len(ahead) > length:
        unreader.unread(ahead[length:])  # the next request's: gunicorn keeps it
        ahead = ahead[:length]
    got = len(ahead)
    view[:got] = ahead
    digest.update(ahead)
    try:
        while got < length:
            n = sock.recv_into(view[got:], min(length - got, READ_PIECE))
            if not n:
                raise BodyIncomplete(f"{got} of {length} bytes")
            digest.update(view[got : got + n])
            got += n
    except BaseException:
        wsgi_input.failed = True  # gunicorn: do not reuse this connection
        raise
    finally:
        reader.length = 0  # consumed: gunicorn has nothing left to drain
        stream._read_started = True
    return Body(data=received, sha256=digest.hexdigest())  # not copied
