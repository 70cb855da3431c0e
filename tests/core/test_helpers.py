import logging

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import RequestFactory
from django_htmx.middleware import HtmxMiddleware

from apps.core.htmx import htmx_partial
from apps.core.logfilters import RedactPhiFilter, redact_phi


def _request(**headers):
    request = RequestFactory().get("/", **headers)
    HtmxMiddleware(lambda r: None)(request)
    return request


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "full"),
        ({"HTTP_HX_REQUEST": "true"}, "partial"),
        ({"HTTP_HX_REQUEST": "true", "HTTP_HX_BOOSTED": "true"}, "full"),
    ],
)
def test_htmx_partial_picks_template(headers, expected, settings, tmp_path):
    (tmp_path / "full.html").write_text("full")
    (tmp_path / "partial.html").write_text("partial")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    response = htmx_partial(_request(**headers), "full.html", "partial.html", {})
    assert response.content.decode() == expected
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("received study for DOE^JOHN today", "received study for [REDACTED] today"),
        ("name=Smith^Anne^M^^", "name=[REDACTED]"),
        ("plain message, no names", "plain message, no names"),
        ("    ^^^^^^^^", "    ^^^^^^^^"),
    ],
)
def test_person_names_are_redacted(text, expected):
    assert redact_phi(text) == expected


def test_filter_redacts_args_and_exceptions():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "patient %s", ("Doe^Jane",), None)
    assert RedactPhiFilter().filter(record)
    assert record.getMessage() == "patient [REDACTED]"
    try:
        raise ValueError("bad name Roe^Richard")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactPhiFilter().filter(record)
    assert "Roe^Richard" not in record.exc_text
    assert "[REDACTED]" in record.exc_text


def test_configured_logging_uses_the_filter(caplog):
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    assert any(isinstance(f, RedactPhiFilter) for f in handler.filters)


def test_phi_storage_has_no_url(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "phi": {"BACKEND": "apps.core.storage.PhiStorage", "OPTIONS": {"location": tmp_path}},
    }
    phi = storages.create_storage(settings.STORAGES["phi"])
    name = phi.save("a.dcm", ContentFile(b"x"))
    assert (tmp_path / name).is_file()
    with pytest.raises(NotImplementedError):
        phi.url(name)


@pytest.mark.django_db
def test_html_error_pages_use_the_site_layout(radiologist_client):
    forbidden = radiologist_client.get("/models/")
    assert forbidden.status_code == 403
    assert b"Not allowed" in forbidden.content
    missing = radiologist_client.get("/no-such-page/")
    assert missing.status_code == 404
    assert b"There is nothing at this address" in missing.content
