"""Headers (issue 8): strict CSP, Permissions-Policy, no-store wherever PHI can be."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.parametrize("path", ["/", "/issues/", "/issues/new/"])
def test_pages_carry_a_strict_csp_and_permissions_policy(engineer_client, path):
    response = engineer_client.get(path)
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_api_responses_are_never_stored(token_client):
    response = token_client.get("/api/v1/studies/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_pages_are_never_stored(radiologist_client):
    response = radiologist_client.get("/clinical/queue/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_static_files_stay_cacheable(client):
    response = client.get("/static/js/app.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_htmx_runs_without_eval():
    base = (TEMPLATES / "base.html").read_text()
    assert '"allowEval":false' in base
    assert '"includeIndicatorStyles":false' in base


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_no_template_has_inline_script_handlers_or_styles(template):
    text = template.read_text()
    # json_script renders <script type="application/json">: data, not code (allowed).
    scripts = [m for m in _INLINE_SCRIPT.findall(text) if "application/json" not in m]
    assert scripts == []
    assert _HANDLER.findall(text) == []
    assert _STYLE_ATTR.findall(text) == []
