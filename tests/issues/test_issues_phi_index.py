"""The server scrubs issue text against the linked study and the identifier index.

The hardening probe: an API client files an issue about its own study with PHI
written 13 ways; the engineer's issue page and API must show none of it.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytest

from apps.clinical.models import PhiDigest
from apps.clinical.services import study_receive
from apps.issues.models import Issue
from mahtqa.imaging.write import cr_dataset

pytestmark = pytest.mark.django_db

NAME = "FAIRWEATHER^ROSALIND"
PID = "778899"
BIRTH = "19800312"
ACCESSION = "ACC55501"


def _planted_dicom() -> tuple[bytes, pydicom.Dataset]:
    ds = cr_dataset(np.full((96, 80), 900, dtype=np.uint16), patient_name=NAME, patient_id=PID)
    ds.PatientBirthDate = BIRTH
    ds.AccessionNumber = ACCESSION
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue(), ds


def _forms(sop_uid: str) -> dict:
    """The 13 forms of the probe, spread over every free-text and context field."""
    return {
        "title": f"Wrong landmarks for {NAME}",
        "description": "\n".join([
            "Patient name: Rosalind Fairweather",
            f"patient id {PID}",
            f"PatientID={PID}",
            "DOB 1980-03-12",
            "date of birth 12/03/1980",
            f"SOP Instance UID {sop_uid}",
            f"bare id {PID} again and {PID}",
            "born 12.03.1980",
            "seen 12/03/1980",
            f"uid {sop_uid}",
            f"accession {ACCESSION}",
        ]),
        "reproduction_steps": [f"open {PID}", f"look at {sop_uid}"],
        "data_state": {"note": f"Rosalind {PID} {BIRTH}", "uid": sop_uid, "n": int(PID)},
        "category": "clinical", "severity": "high",
    }  # fmt: skip


SECRETS = ["Fairweather", "Rosalind", PID, BIRTH, "1980-03-12", "12/03/1980", "12.03.1980",
           ACCESSION]  # fmt: skip


def _leaks(text: str, sop_uid: str) -> list[str]:
    return [s for s in [*SECRETS, sop_uid] if s.lower() in text.lower()]


@pytest.fixture
def planted_study(api_client_user):
    data, ds = _planted_dicom()
    study, created = study_receive(user=api_client_user, data=data)
    assert created
    return study, str(ds.SOPInstanceUID)


def test_intake_indexes_identifiers_as_digests_only(planted_study):
    study, sop_uid = planted_study
    digests = list(PhiDigest.objects.values_list("digest", flat=True))
    assert len(digests) >= 6  # name parts, ID, birth date, accession, UIDs
    dump = json.dumps(digests)
    assert _leaks(dump, sop_uid) == []


def test_issue_linked_to_own_study_shows_engineers_no_phi(
    planted_study, token_client, engineer_client
):
    study, sop_uid = planted_study
    body = {**_forms(sop_uid), "study": str(study.public_id)}
    resp = token_client.post("/api/v1/issues/", body, format="json")
    assert resp.status_code == 201, resp.content
    issue = Issue.objects.get(pk=resp.json()["id"])
    assert issue.study_id == study.pk
    page = engineer_client.get(f"/issues/{issue.pk}/")
    assert page.status_code == 200
    assert _leaks(page.content.decode(), sop_uid) == []
    assert "[REDACTED]" in page.content.decode()
    api = engineer_client.get(f"/api/v1/issues/{issue.pk}/")
    assert api.status_code == 200
    assert _leaks(json.dumps(api.json()), sop_uid) == []
    stored = json.dumps(list(Issue.objects.values()), default=str)
    assert _leaks(stored, sop_uid) == []


def test_unlinked_issue_is_scrubbed_through_the_index(planted_study, engineer, engineer_client):
    """No study linked, no phi_values: only the index knows the bare ID and the name."""
    from apps.issues.services import issue_report

    _, sop_uid = planted_study
    issue, _ = issue_report(
        title="Worker crashed on case 778899", category="clinical", severity="high",
        description="Rosalind's radiograph (ACC55501), taken 19800312", reporter=engineer,
    )  # fmt: skip
    assert issue.title == "Worker crashed on case [REDACTED]"
    assert _leaks(issue.description, sop_uid) == []
    page = engineer_client.get(f"/issues/{issue.pk}/")
    assert _leaks(page.content.decode(), sop_uid) == []


def test_comments_are_scrubbed_against_the_linked_study(planted_study, engineer, engineer_client):
    from apps.issues.services import issue_comment, issue_report

    study, sop_uid = planted_study
    issue, _ = issue_report(title="Odd case", category="clinical", severity="low", study=study)
    event = issue_comment(issue=issue, actor=engineer, text=f"Asked about {PID}, Fairweather")
    assert event.text == "Asked about [REDACTED], [REDACTED]"


def test_client_cannot_link_another_clients_study(planted_study, make_user):
    """Client B gets the same 404 for client A's study as for a study that does not exist."""
    from rest_framework.test import APIClient

    from apps.accounts.roles import Role
    from apps.accounts.services import api_token_create

    study, _ = planted_study
    other = make_user(Role.API_CLIENT, username="other-bridge")
    _, key = api_token_create(user=other, name="b")
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    base = {"title": "x", "category": "data", "severity": "low"}
    theirs = http.post("/api/v1/issues/", {**base, "study": str(study.public_id)}, format="json")
    missing = http.post(
        "/api/v1/issues/", {**base, "study": "3f2a1c9e-1b2c-4d5e-8f90-1234567890ab"}, format="json"
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert theirs.json()["code"] == "not_found"
    assert Issue.objects.count() == 0


def test_the_index_is_rebuilt_from_the_stored_originals(planted_study):
    from io import StringIO

    from django.core.management import call_command

    before = set(PhiDigest.objects.values_list("digest", flat=True))
    PhiDigest.objects.all().delete()
    out = StringIO()
    call_command("phi_index_rebuild", stdout=out)
    assert "indexed 1 studies" in out.getvalue()
    assert set(PhiDigest.objects.values_list("digest", flat=True)) == before
