"""The clinical monitor on the database: reviewed cases -> safety-alert incident, folding,
the page with its plots, the thresholds form (audited), and the beat entry."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.urls import reverse

from apps.clinical.models import AuditEvent
from apps.monitoring.models import Incident, IncidentEvent, MonitorSettings
from apps.monitoring.selectors.clinical import clinical_records
from apps.monitoring.services.clinical import clinical_monitor_run
from apps.monitoring.tasks import clinical_monitor_task
from tests.factories import (
    ModelVersionFactory,
    PredictionFactory,
    ReviewFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
    landmark_rows,
)

pytestmark = pytest.mark.django_db

SITE = "a1b2c3d4e5f60718"


@pytest.fixture
def world():
    return {
        "site": SiteFactory(key=SITE, device="Test device"),
        "model": ModelVersionFactory(name="maht-net", version="7"),
        "reviewer": UserFactory(role="radiologist"),
    }


def reviewed_case(world, *, corrected: bool, shift_px: float = 30.0, ood: float = 0.2):
    study = StudyFactory(site=world["site"], status="reviewed")
    pred = PredictionFactory(study=study, model_version=world["model"], confidence=0.8,
                             ood_score=ood)  # fmt: skip
    after = landmark_rows(0.8, study=study)
    if corrected:
        after[2] = {**after[2], "x": after[2]["x"] + shift_px, "corrected": True}
    ReviewFactory(study=study, prediction=pred, reviewer=world["reviewer"],
                  outcome="corrected" if corrected else "accepted",
                  landmarks_after=after)  # fmt: skip
    return study


def correction_stream(world, n: int = 50, corrected: int = 30) -> list:
    return [reviewed_case(world, corrected=i < corrected) for i in range(n)]


def test_records_are_read_in_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    correction_stream(world, n=20, corrected=5)
    with django_assert_max_num_queries(2):
        records = clinical_records()
    assert len(records) == 20
    corrected = [r for r in records if r.decision == "corrected"]
    assert len(corrected) == 5
    errors = corrected[0].errors_mm()
    assert errors[2] == pytest.approx(3.0)  # 30 px at 0.1 mm on landmark A
    assert errors.sum() == pytest.approx(3.0)
    assert {r.site for r in records} == {SITE}
    assert records[0].model_version == "maht-net 7"


def test_a_stream_of_corrections_opens_one_safety_incident_and_folds(world):
    studies = correction_stream(world)  # 60 % corrected > 40 %
    started = time.monotonic()
    result = clinical_monitor_run()
    assert time.monotonic() - started < 60
    key = f"clinical:correction_rate:{SITE}"
    assert result["alerts"] == [key]
    assert len(result["opened"]) == 1
    assert result["folded"] == []
    incident = Incident.objects.get()
    assert incident.trigger == "safety_alert"
    assert incident.fingerprint == f"safety_alert:clinical:site:{SITE}"  # one per site
    assert incident.severity == "sev1"
    assert "60%" in incident.summary
    assert SITE in incident.summary
    assert set(incident.studies.values_list("pk", flat=True)) == {s.pk for s in studies}
    opened = IncidentEvent.objects.get(incident=incident, kind="opened")
    assert opened.data["signal"] == "correction_rate"
    assert opened.data["statistic"] == pytest.approx(0.6)
    assert opened.data["threshold"] == pytest.approx(0.4)

    # Same evidence: nothing new on the timeline.
    again = clinical_monitor_run()
    assert again["unchanged"] == [key]
    assert again["opened"] == again["folded"] == []
    incident.refresh_from_db()
    assert incident.occurrences == 1

    # A new corrected case: the repeat folds into the open incident.
    reviewed_case(world, corrected=True)
    third = clinical_monitor_run()
    assert third["folded"] == [incident.pk]
    assert third["opened"] == []
    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.occurrences == 2


def test_a_healthy_stream_opens_nothing(world):
    correction_stream(world, n=60, corrected=6)  # 10 %
    result = clinical_monitor_run()
    assert result["alerts"] == []
    assert result["opened"] == []
    assert not Incident.objects.exists()


def test_the_window_uses_the_admins_thresholds(world):
    correction_stream(world, n=20, corrected=6)  # 30 %, a 20-case window
    MonitorSettings.objects.update_or_create(
        pk=1, defaults={"window_cases": 20, "max_correction_rate": 0.25}
    )
    result = clinical_monitor_run()
    assert result["alerts"] == [f"clinical:correction_rate:{SITE}"]


def test_the_beat_task_runs_the_monitor_every_30_seconds(world):
    entry = settings.CELERY_BEAT_SCHEDULE["monitoring-clinical-monitor"]
    assert entry["task"] == "apps.monitoring.tasks.clinical_monitor_task"
    assert entry["schedule"] <= 30
    correction_stream(world)
    out = clinical_monitor_task.apply().get()
    assert out["alerts"] == [f"clinical:correction_rate:{SITE}"]
    assert Incident.objects.filter(trigger="safety_alert").count() == 1


def test_the_page_shows_plots_tables_edge_cases_and_alerts(world, client_for):
    studies = correction_stream(world, n=50, corrected=30)
    clinical_monitor_run()
    big = reviewed_case(world, corrected=True, shift_px=120.0)  # the largest correction
    response = client_for("engineer").get(reverse("monitoring:clinical"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 4  # MRE per landmark, rates, OOD/confidence, histogram
    assert "MRE per landmark (mm) over time" in html
    assert 'id="clinical-by-site"' in html
    assert f'data-name="{SITE}"' in html
    assert 'data-name="maht-net 7"' in html
    assert f'data-key="clinical:correction_rate:{SITE}"' in html
    assert reverse("clinical:review", args=[big.public_id]) in html
    edge = html[html.index('id="clinical-edge-cases"') :]
    start = edge.index("<tbody>")
    first_row = edge[start : edge.index("</tr>", start)]
    assert str(big.public_id) in first_row
    assert "12.00 mm (A)" in first_row
    assert "INC-" in html
    for s in studies[:5]:  # de-identified view: no patient pseudonym, no original UIDs
        assert s.patient_pseudonym not in html
        assert s.sop_instance_uid not in html
    assert 'id="clinical-thresholds"' not in html  # engineers see the values only

    per_case = client_for("admin").get(reverse("monitoring:clinical"), {"bucket": "25"})
    assert per_case.status_code == 200
    body = per_case.content.decode()
    assert "1-25" in body
    assert 'id="clinical-thresholds"' in body


def test_the_page_filters_by_site(world, client_for):
    correction_stream(world, n=5, corrected=1)
    other = SiteFactory(key="ffffeeeeddddcccc")
    study = StudyFactory(site=other, status="released")
    PredictionFactory(study=study, model_version=world["model"], confidence=0.9)
    response = client_for("radiologist").get(reverse("monitoring:clinical"),
                                             {"site": "ffffeeeeddddcccc"})  # fmt: skip
    assert response.status_code == 200
    assert "(site ffffeeeeddddcccc, 1 cases)" in " ".join(response.content.decode().split())


def test_admin_changes_thresholds_audited(client_for):
    admin = client_for("admin")
    response = admin.post(reverse("monitoring:clinical_thresholds"),
                          {"max_correction_rate": "0.3", "window_cases": "40"})  # fmt: skip
    assert response.status_code == 302
    config = MonitorSettings.objects.get(pk=1)
    assert config.max_correction_rate == pytest.approx(0.3)
    assert config.window_cases == 40
    event = AuditEvent.objects.get(action="thresholds_change", target_type="monitor_settings")
    assert event.details["after"] == {"window_cases": 40, "max_correction_rate": 0.3}
    assert event.details["before"]["max_correction_rate"] == pytest.approx(0.4)

    bad = admin.post(reverse("monitoring:clinical_thresholds"), {"max_correction_rate": "1.5"})
    assert bad.status_code == 400
    assert "must be between 0 and 1" in bad.content.decode()
    assert MonitorSettings.objects.get(pk=1).max_correction_rate == pytest.approx(0.3)

    denied = client_for("engineer").post(reverse("monitoring:clinical_thresholds"),
                                         {"max_correction_rate": "0.9"})  # fmt: skip
    assert denied.status_code == 403


def test_resolving_while_the_window_still_alerts_does_not_reopen(world, admin_user):
    from apps.monitoring.services.incidents import incident_status_set

    correction_stream(world)
    first = clinical_monitor_run()
    (incident_id,) = first["opened"]
    incident_status_set(incident_id=incident_id, user=admin_user, status="resolved")
    again = clinical_monitor_run()  # same evidence: no new incident
    assert again["opened"] == []
    assert Incident.objects.count() == 1
    reviewed_case(world, corrected=True)  # new evidence after resolution: a new incident
    third = clinical_monitor_run()
    assert len(third["opened"]) == 1
    assert Incident.objects.count() == 2
