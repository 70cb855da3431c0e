"""``apps.core.requests.body_read``: a request body read whole with its SHA-256, straight
from the socket under gunicorn (real gunicorn parser and environ over a socket pair),
through ``stream.read`` anywhere else."""

from __future__ import annotations

import hashlib
import io
import socket
import threading

import pytest
from django.core.handlers.wsgi import WSGIRequest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from apps.core.requests import READ_PIECE, BodyIncomplete, BodyTooLarge, body_read

ADDR = ("127.0.0.1", 40000)


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"z" * (size % 256)


def _served(head: bytes, body: bytes, *, trailing: bytes = b"", meta: dict | None = None):
    """Send a request over a socket pair; gunicorn parses it; returns the Django request
    gunicorn's environ makes, the parser (to see what it kept) and the sender thread."""
    server, client = socket.socketpair()

    def send() -> None:
        client.sendall(head + body + trailing)
        client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    cfg = Config()
    parser = RequestParser(cfg, server, ADDR)
    req = next(parser)
    _, environ = wsgi.create(req, server, ADDR, ("127.0.0.1", 8000), cfg)
    environ.setdefault("SERVER_NAME", "testserver")
    environ.update(meta or {})
    return WSGIRequest(environ), parser, (server, client, sender)


def _close(sockets) -> None:
    server, client, sender = sockets
    sender.join(timeout=10)
    server.close()
    client.close()


def _head(length: int, extra: str = "") -> bytes:
    return (
        f"POST /api/v1/studies/ HTTP/1.1\r\nHost: testserver\r\n"
        f"Content-Type: application/dicom\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize("size", [1, 300, 3 * READ_PIECE + 17])
def test_gunicorn_body_is_read_whole_with_its_digest_and_leaves_what_follows(size):
    body = _payload(size)
    request, parser, sockets = _served(_head(size), body, trailing=b"NEXT REQUEST")
    try:
        got = body_read(stream=request, limit=size)
        assert got.data == body
        assert type(got.data) is memoryview
        assert got.data.readonly
        assert got.sha256 == hashlib.sha256(body).hexdigest()
        assert request.META["wsgi.input"].read(10) == b""  # consumed: nothing to drain
        assert parser.unreader.read().startswith(b"NEXT")  # pipelined bytes kept
    finally:
        _close(sockets)


def _gunicorn_read(body: bytes):
    request, _, sockets = _served(_head(len(body)), body)
    try:
        return body_read(stream=request, limit=len(body))
    finally:
        _close(sockets)


def test_the_receive_buffer_is_reused_once_nothing_holds_the_last_body():
    first = _gunicorn_read(_payload(5000))
    address = id(first.data.obj)  # not a reference: that would hold the buffer
    del first  # the request is over: nothing holds its view
    second = _gunicorn_read(b"x" * 3000)
    assert id(second.data.obj) == address  # the same buffer, already mapped
    assert second.data == b"x" * 3000
    assert len(second.data) == 3000


def test_a_body_still_held_is_released_not_overwritten_by_the_next():
    first = _gunicorn_read(_payload(5000))  # held, as a reference cycle would hold it
    address = id(first.data.obj)
    second = _gunicorn_read(b"y" * 5000)
    assert id(second.data.obj) == address  # reused...
    with pytest.raises(ValueError, match="released"):
        bytes(first.data)  # ...and the old view refuses to read: never the new bytes
    assert second.data == b"y" * 5000


def test_a_piece_of_a_body_still_in_use_keeps_its_bytes():
    first = _gunicorn_read(_payload(5000))
    piece = first.data[100:200]  # a part someone still works on
    second = _gunicorn_read(b"z" * 5000)
    assert id(second.data.obj) != id(piece.obj)  # a new buffer, not the one in use
    assert piece == _payload(5000)[100:200]
    assert second.data == b"z" * 5000


def test_a_body_larger_than_the_kept_size_gets_a_buffer_of_its_own(monkeypatch):
    monkeypatch.setattr("apps.core.requests.KEEP_BUFFER_MAX", 4000)
    monkeypatch.setattr("apps.core.requests._kept", threading.local())  # none kept yet
    kept = id(_gunicorn_read(b"k" * 1000).data.obj)
    big = _gunicorn_read(b"b" * 5000)
    assert id(big.data.obj) != kept
    assert big.data == b"b" * 5000
    del big
    assert id(_gunicorn_read(b"s" * 900).data.obj) == kept  # the small one stays kept


def test_gunicorn_body_over_the_limit_is_refused_before_it_is_read():
    body = _payload(5000)
    request, parser, sockets = _served(_head(len(body)), body)
    try:
        with pytest.raises(BodyTooLarge):
            body_read(stream=request, limit=4999)
        assert request.META["wsgi.input"].reader.length == 5000  # untouched
    finally:
        _close(sockets)


def test_a_client_that_goes_away_early_is_refused_and_its_connection_dropped():
    sent = _payload(700)
    request, _, sockets = _served(_head(2000), sent)  # promises 2000 bytes, sends 700
    try:
        with pytest.raises(BodyIncomplete):
            body_read(stream=request, limit=4000)
        assert request.META["wsgi.input"].failed is True  # gunicorn closes it
    finally:
        _close(sockets)


def test_a_body_read_from_below_django_takes_the_portable_path():
    body = _payload(5000)
    request, _, sockets = _served(_head(len(body)), body)
    try:
        assert request.META["wsgi.input"].read(100) == body[:100]  # e.g. a WSGI middleware
        got = body_read(stream=request, limit=len(body))
        assert got.data == body[100:]  # what is left, as the portable path gives it
    finally:
        _close(sockets)


def test_a_body_already_read_from_takes_the_portable_path():
    body = _payload(READ_PIECE + 99)
    request, _, sockets = _served(_head(len(body)), body)
    try:
        assert request.read(10) == body[:10]
        got = body_read(stream=request, limit=len(body))
        assert got.data == body[10:]
        assert got.sha256 == hashlib.sha256(body[10:]).hexdigest()
    finally:
        _close(sockets)


def test_a_chunked_body_takes_the_portable_path():
    body = _payload(3000)
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:1000], body[1000:])
    )
    head = (
        b"POST /api/v1/studies/ HTTP/1.1\r\nHost: testserver\r\n"
        b"Content-Type: application/dicom\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    # Django reads a body only up to CONTENT_LENGTH; a proxy in front would set it.
    request, _, sockets = _served(head, chunks + b"0\r\n\r\n", meta={"CONTENT_LENGTH": "3000"})
    try:
        got = body_read(stream=request, limit=len(body))
        assert got.data == body
        assert got.sha256 == hashlib.sha256(body).hexdigest()
    finally:
        _close(sockets)


@pytest.mark.parametrize("size", [0, 1, READ_PIECE, READ_PIECE + 1, 3 * READ_PIECE + 7])
def test_any_other_stream_is_read_in_pieces_up_to_the_limit(size):
    body = _payload(size)
    got = body_read(stream=io.BytesIO(body), limit=size)  # exactly at the limit
    assert got.data == body
    assert got.sha256 == hashlib.sha256(body).hexdigest()
    if size:
        with pytest.raises(BodyTooLarge):
            body_read(stream=io.BytesIO(body), limit=size - 1)
    assert body_read(stream=None, limit=10).data == b""
