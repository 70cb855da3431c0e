"""PHI never reaches an issue, its occurrences, context, timeline or notifications."""

from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytest
from django.core import mail

from apps.issues.models import Issue, IssueEvent, Notification, Occurrence
from apps.issues.services import issue_report
from mahtqa.imaging.write import write_cr
from mahtqa.reporting import exception_trace, scrub_data, scrub_text
from tests.helpers import delivered

pytestmark = pytest.mark.django_db


def _dicom_name() -> tuple[str, pydicom.Dataset]:
    raw = write_cr(np.zeros((32, 32), dtype=np.uint16), patient_name="DOE^JANE",
                   patient_id="PID-778899")  # fmt: skip
    ds = pydicom.dcmread(io.BytesIO(raw))
    return str(ds.PatientName), ds


def _everything_stored() -> str:
    dump = []
    for model in (Issue, Occurrence, IssueEvent, Notification):
        dump += [json.dumps(row, default=str) for row in model.objects.values()]
    dump += [f"{m.subject}\n{m.body}" for m in mail.outbox]
    return "\n".join(dump)


def _leak(text: str) -> list[str]:
    return [t for t in ("DOE", "JANE", "PID-778899", "19700101") if t.lower() in text.lower()]


def test_patient_name_from_a_dicom_header_is_scrubbed_everywhere(
    django_capture_on_commit_callbacks, engineer
):
    name, ds = _dicom_name()
    assert name == "DOE^JANE"  # the header really carries it
    try:
        raise ValueError(f"Landmark decode failed for patient {ds.PatientName} ({ds.PatientID})")
    except ValueError as exc:
        traces = exception_trace(exc)
    with delivered():
        issue, _ = issue_report(
            title=f"Decode failed for {ds.PatientName}",
            description=f"Seen on {ds.PatientName}, birth date: 19700101",
            category="clinical", severity="critical", traces=traces, reporter=engineer,
            data_state={"PatientName": str(ds.PatientName), "note": f"file of {name}"},
            reproduction_steps=[f"open the study of {name}"],
            phi_values=[str(ds.PatientID)],
        )  # fmt: skip
    assert issue.occurrence_count == 1
    assert len(mail.outbox) == 1  # new critical: the notification went out...
    stored = _everything_stored()
    assert "[REDACTED]" in stored  # ...and the name was replaced, not dropped silently
    assert _leak(stored) == []


def test_api_report_with_dicom_name_is_scrubbed(token_client):
    name, _ = _dicom_name()
    response = token_client.post(
        "/api/v1/issues/",
        {
            "title": f"Crash on {name}", "category": "data", "severity": "high",
            "traces": [{"type": "KeyError", "message": f"'{name}'", "frames": []}],
            "environment": {"hostname": "w1", "user_email": "jane.doe@hospital.example"},
        },
        format="json",
    )  # fmt: skip
    assert response.status_code == 201
    assert _leak(json.dumps(response.json())) == []
    assert _leak(_everything_stored()) == []


def test_scrub_text_patterns():
    assert scrub_text("name DOE^JANE^Q ok") == "name [REDACTED] ok"
    assert scrub_text("mail jane@x.org") == "mail [REDACTED]"
    assert scrub_text("DOB: 1970-01-01") == "DOB: [REDACTED]"
    assert scrub_text("StudyInstanceUID=1.2.840.113619.2.1") == "StudyInstanceUID=[REDACTED]"
    assert scrub_text("Jane Doe again", ["DOE^JANE"]) == "[REDACTED] [REDACTED] again"
    # Traceback carets and ordinary text survive.
    assert scrub_text("x = 1 ^^^^^ patient identification") == "x = 1 ^^^^^ patient identification"
    assert scrub_data({"PatientID": "123", "n": 4}) == {"PatientID": "[REDACTED]", "n": 4}
