"""The report pages, the exports, the API and the CLI of a validated version."""

from __future__ import annotations

import csv
import io
import json
from functools import partial

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from apps.datasets.models import DatasetVersion, ValidationRun
from apps.datasets.services import (
    dataset_register_folder,
    validation_run_execute,
    validation_run_start,
)
from tests.datasets.conftest import ISBI_SPACING, defect_truncate, needs_isbi

pytestmark = [pytest.mark.django_db, needs_isbi]

CASES = ["001", "002", "003", "004", "005"]


@pytest.fixture
def validated(make_isbi):
    folder = make_isbi("pages", CASES, [partial(defect_truncate, case="003")])
    version = dataset_register_folder(path=folder, name="Pages", spacing=ISBI_SPACING)
    run = validation_run_execute(run_id=validation_run_start(version=version).pk)
    return version, run


def test_the_report_page_shows_cards_consistency_and_findings(client, engineer, validated):
    version, run = validated
    client.force_login(engineer)
    page = client.get(reverse("datasets:run", args=[run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="integrity-score">80 %' in html
    assert 'id="least-consistent"' in html
    assert "image_truncated" in html
    assert f'href="/issues/{run.issue_id}/"' in html
    only = client.get(reverse("datasets:run", args=[run.pk]), {"severity": "critical"})
    rows = only.content.decode().count('class="finding sev-')
    assert rows == run.findings.filter(severity="critical").count() == 1
    partial_page = client.get(
        reverse("datasets:run", args=[run.pk]), headers={"HX-Request": "true"}
    )
    assert partial_page.status_code == 200
    assert partial_page.content.decode().startswith('<div id="run-body"')


def test_a_running_run_polls_and_shows_progress(client, engineer, make_isbi):
    folder = make_isbi("poll", CASES[:2])
    version = dataset_register_folder(path=folder, name="Poll")
    run = validation_run_start(version=version)
    client.force_login(engineer)
    html = client.get(reverse("datasets:run", args=[run.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in html
    assert "0 of 2 images checked" in html


def test_exports_hold_every_finding(client, engineer, validated):
    version, run = validated
    client.force_login(engineer)
    r = client.get(reverse("datasets:run_export", args=[run.pk, "csv"]))
    assert (r.status_code, r["Content-Type"]) == (200, "text/csv; charset=utf-8")
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert len(rows) == run.findings.count()
    assert {"severity", "code", "image", "landmark", "annotator", "message"} == set(rows[0])
    j = client.get(reverse("datasets:run_export", args=[run.pk, "json"])).json()
    assert (len(j["findings"]), j["summary"]["images"]) == (run.findings.count(), 5)
    assert client.get(f"/datasets/runs/{run.pk}/export.xml").status_code == 404


def test_the_image_page_and_thumbnails(client, engineer, validated):
    version, run = validated
    client.force_login(engineer)
    html = client.get(reverse("datasets:image", args=[version.pk, "002"])).content.decode()
    assert html.count('class="ann ann-') == 14  # 7 landmarks x 2 annotators
    png = client.get(
        reverse("datasets:image_file", args=[version.pk, "002"]), {"thumb": "1", "landmark": "A"}
    )
    assert (png.status_code, png["Content-Type"], png.content[:4]) == (200, "image/png", b"\x89PNG")
    broken = client.get(reverse("datasets:image_file", args=[version.pk, "003"]), {"thumb": "1"})
    assert broken.status_code == 404
    assert client.get(reverse("datasets:image", args=[version.pk, "nope"])).status_code == 404


def test_registration_page_refusal_shows_the_reason(client, engineer, dataset_roots):
    client.force_login(engineer)
    r = client.post(reverse("datasets:register"), {"name": "X", "path": "../../etc"})
    assert r.status_code == 400
    assert "path_traversal" in r.content.decode()
    assert DatasetVersion.objects.count() == 0


def test_the_api_registers_validates_and_reports(make_isbi, engineer):
    folder = make_isbi("api", CASES[:3])
    client = APIClient()
    client.force_authenticate(engineer)
    r = client.post(
        "/api/v1/datasets/", {"name": "Api", "path": folder, "spacing": ISBI_SPACING}, format="json"
    )
    assert r.status_code == 201
    vid = r.json()["id"]
    r = client.post(
        f"/api/v1/datasets/versions/{vid}/validate/", {"consistency_mm": 2.5}, format="json"
    )
    assert (r.status_code, r.json()["status"]) == (202, "queued")
    run_id = r.json()["id"]
    validation_run_execute(run_id=run_id)
    r = client.get(f"/api/v1/datasets/runs/{run_id}/")
    assert (r.status_code, r.json()["status"], r.json()["progress"]["percent"]) == (
        200,
        "done",
        100.0,
    )
    findings = client.get(f"/api/v1/datasets/runs/{run_id}/findings/", {"severity": "info"}).json()
    assert findings
    assert {f["severity"] for f in findings} == {"info"}
    bad = client.get(f"/api/v1/datasets/runs/{run_id}/findings/", {"severity": "loud"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    bad = client.post(
        f"/api/v1/datasets/versions/{vid}/validate/", {"consistency_mm": 99}, format="json"
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    assert (
        client.get("/api/v1/datasets/versions/999999/").json()["code"]
        == "dataset_version_not_found"
    )
    assert client.get("/api/v1/datasets/runs/999999/").status_code == 404
    r = client.post(f"/api/v1/datasets/versions/{vid}/correct/")
    assert (r.status_code, r.json()["code"]) == (409, "nothing_confirmed")
    r = client.post(
        f"/api/v1/datasets/versions/{vid}/profile/", {"batch_sizes": [0]}, format="json"
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_option")


def test_dataset_register_prints_the_version_id_last(make_isbi):
    folder = make_isbi("cli", CASES[:2])
    out = io.StringIO()
    call_command(
        "dataset_register",
        folder,
        "--name",
        "Cli",
        "--spacing",
        ISBI_SPACING,
        stdout=out,
        stderr=io.StringIO(),
    )
    last = out.getvalue().strip().splitlines()[-1]
    assert DatasetVersion.objects.get(pk=int(last)).dataset.name == "Cli"


def test_dataset_validate_inline_json_prints_the_report(make_isbi):
    folder = make_isbi("clivalidate", CASES[:3], [partial(defect_truncate, case="002")])
    version = dataset_register_folder(path=folder, name="CliValidate", spacing=ISBI_SPACING)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command(
            "dataset_validate",
            str(version.pk),
            "--inline",
            "--json",
            stdout=out,
            stderr=io.StringIO(),
        )
    assert exit_.value.code == 1  # a critical finding
    report = json.loads(out.getvalue())
    assert report["status"] == "done"
    assert report["summary"]["images"] == 3
    codes = {(f["code"], f["image"]) for f in report["findings"]}
    assert ("image_truncated", "002") in codes
    assert set(report["findings"][0]) == {
        "severity",
        "code",
        "image",
        "landmark",
        "annotator",
        "message",
    }
    assert ValidationRun.objects.filter(version=version).count() == 1


def test_the_page_queries_do_not_grow_with_findings(
    client, engineer, validated, django_assert_max_num_queries
):
    version, run = validated
    client.force_login(engineer)
    with django_assert_max_num_queries(20):
        assert client.get(reverse("datasets:run", args=[run.pk])).status_code == 200


def test_an_issue_started_from_the_version_links_it(client, engineer, validated):
    from apps.issues.models import Issue

    version, _ = validated
    client.force_login(engineer)
    form = client.get(reverse("issues:new"), {"dataset_version": version.pk}).content.decode()
    assert f'value="{version.pk}"' in form
    body = {"title": "A and B drift in this set", "category": "data", "severity": "low",
            "dataset_version": version.pk}  # fmt: skip
    r = client.post(reverse("issues:new"), body)
    assert r.status_code == 302
    issue = Issue.objects.get(title=body["title"])
    assert (issue.dataset_version_id, issue.dataset_name) == (version.pk, "Pages v1")
    page = client.get(reverse("issues:detail", args=[issue.pk])).content.decode()
    assert f'href="/datasets/versions/{version.pk}/"' in page
    missing = client.post(reverse("issues:new"), {**body, "title": "x", "dataset_version": 999999})
    assert missing.status_code == 200
    assert "No such dataset version." in missing.content.decode()


def test_the_issue_api_links_a_dataset_version(validated, engineer):
    version, _ = validated
    client = APIClient()
    client.force_authenticate(engineer)
    body = {
        "title": "Loader drops a case",
        "category": "data",
        "severity": "low",
        "dataset_version": version.pk,
    }
    r = client.post("/api/v1/issues/", body, format="json")
    assert r.status_code == 201
    from apps.issues.models import Issue

    assert Issue.objects.get(pk=r.json()["id"]).dataset_version_id == version.pk
    bad = client.post(
        "/api/v1/issues/", {**body, "title": "other", "dataset_version": 999999}, format="json"
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "unknown_dataset_version")
