"""Intake through a real gunicorn (2 sync workers, this run's test database): the body
is received straight from the socket (``apps.core.requests.body_read``), hashed as it
arrives, and written with ``O_DIRECT``; the stored study rebuilds the exact bytes sent
and its SHA-256 is theirs. A chunked body (no Content-Length) is refused with 411
``length_required``."""

from __future__ import annotations

import hashlib
import http.client

import pytest

from apps.accounts.services import api_client_create
from apps.clinical.models import Study
from apps.clinical.selectors import study_original_bytes
from apps.core.storage import DIRECT_MIN_BYTES
from tests.clinical.conftest import cr_bytes
from tests.support.stack import Stack

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def web(private_redis):
    live = Stack(redis=private_redis)
    try:
        live.start_web()
        yield live
    finally:
        live.stop()


def test_a_large_study_through_gunicorn_is_stored_byte_for_byte(web):
    _, _, token = api_client_create(name="pacs-gunicorn")
    sent = [cr_bytes(seed=s, rows=1400, cols=1100) for s in (1, 2)]  # about 3 MB each
    assert all(len(d) > DIRECT_MIN_BYTES for d in sent)
    for data in sent:
        resp = web.submit(data, token)
        assert resp.status == 202, resp.body
        study = Study.objects.get(public_id=resp.body["id"])
        assert study.file_sha256 == hashlib.sha256(data).hexdigest()
        assert study.file_size == len(data)
        assert study_original_bytes(study=study) == data
    assert web.submit(sent[0], token).status == 200  # the same instance again: no new row
    assert Study.objects.count() == 2


def test_a_chunked_body_without_a_length_is_refused_with_a_code(web):
    _, _, token = api_client_create(name="pacs-chunked")
    conn = http.client.HTTPConnection("127.0.0.1", web.web_port, timeout=30)
    try:
        conn.putrequest("POST", "/api/v1/studies/")
        conn.putheader("Authorization", f"Token {token}")
        conn.putheader("Content-Type", "application/dicom")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        data = cr_bytes(seed=3)
        conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 411
        assert b'"code":"length_required"' in resp.read().replace(b" ", b"")
    finally:
        conn.close()
    assert Study.objects.count() == 0


def _chunked_post(port: int, path: str, headers: dict[str, str], body: bytes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def test_every_chunked_upload_is_refused_before_any_view(web):
    """Django would hand a chunked body to a view as empty: a dataset zip, a model
    bundle or a form would look like a missing file. 411 at the door instead, the API's
    JSON for /api/, the error page elsewhere."""
    _, _, token = api_client_create(name="pacs-chunked-zip")
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/zip"}
    status, kind, body = _chunked_post(web.web_port, "/api/v1/datasets/", auth, b"PK\x03\x04")
    assert (status, kind) == (411, "application/json")
    assert b'"code":"length_required"' in body.replace(b" ", b"")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, kind, body = _chunked_post(web.web_port, "/accounts/login/", form, b"username=a")
    assert status == 411
    assert kind.startswith("text/html")
    assert b"Content-Length" in body
