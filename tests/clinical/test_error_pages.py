"""Domain errors on the clinical pages: the right status, and the message always escaped."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.core.errors import Conflict, InvalidInput
from tests.clinical.review_factories import landmark_rows, make_case

pytestmark = pytest.mark.django_db
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _raise(exc):
    def _service(**kwargs):
        raise exc

    return _service


def test_recompute_error_fragment_is_escaped(radiologist_client, monkeypatch):
    case = make_case()
    radiologist_client.post(reverse("clinical:next_case"))
    monkeypatch.setattr(
        "apps.clinical.views.review.landmarks_clean", _raise(InvalidInput("invalid_landmarks", XSS))
    )
    response = radiologist_client.post(
        reverse("clinical:recompute", args=[case.study.public_id]),
        {"landmarks": json.dumps(landmark_rows())},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "<script>" not in html
    assert ESCAPED in html
    assert 'data-code="invalid_landmarks"' in html


def test_recompute_with_bad_json_is_a_400_fragment(radiologist_client):
    case = make_case()
    radiologist_client.post(reverse("clinical:next_case"))
    response = radiologist_client.post(
        reverse("clinical:recompute", args=[case.study.public_id]), {"landmarks": "{nope"}
    )
    assert response.status_code == 400
    assert "landmarks must be JSON." in response.content.decode()


def test_htmx_claim_error_is_escaped_with_its_status(radiologist_client, monkeypatch):
    case = make_case()
    monkeypatch.setattr(
        "apps.clinical.views.review.review_task_claim", _raise(Conflict("claimed", XSS))
    )
    response = radiologist_client.post(
        reverse("clinical:claim", args=[case.study.public_id]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#messages-inline"
    html = response.content.decode()
    assert "<script>" not in html
    assert ESCAPED in html


def test_page_claim_error_is_flashed_escaped(radiologist_client, monkeypatch):
    case = make_case()
    monkeypatch.setattr(
        "apps.clinical.views.review.review_task_claim", _raise(Conflict("claimed", XSS))
    )
    response = radiologist_client.post(reverse("clinical:claim", args=[case.study.public_id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("clinical:review_queue")
    page = radiologist_client.get(response["Location"]).content.decode()
    assert XSS not in page
    assert ESCAPED in page


def test_a_real_conflict_keeps_its_status(radiologist_client, client_for):
    case = make_case()
    radiologist_client.post(reverse("clinical:next_case"))  # holds the case
    other = client_for("radiologist")
    response = other.post(
        reverse("clinical:claim", args=[case.study.public_id]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert 'data-code="claimed"' in response.content.decode()
