"""Threshold administration: versioned, validated, audited, history old -> new."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.clinical.choices import AuditAction
from apps.clinical.models import AuditEvent, RoutingPolicy
from apps.clinical.services.escalation import notifications_current
from apps.clinical.services.policy import routing_policy_current, routing_policy_update
from apps.clinical.services.thresholds import policy_history, thresholds_update
from apps.core.errors import InvalidInput

pytestmark = pytest.mark.django_db
URL = "/clinical/thresholds/"


def _form(**overrides) -> dict:
    data = {
        "routing_mode": "risk_controlled", "tolerated_risk": "0.05",
        "min_confidence": "0.5", "max_ood_score": "1.0", "review_policy": "exceptions_only",
        "urgent_severities": ["high"], "sla_urgent": "60", "sla_normal": "1440",
        "escalation_chain": "radiologist, senior_radiologist, admin",
        "allowed_modalities": "CR, DX", "plausibility": "{}", "notify_senior": "",
        "notify_admin": "", "webhook_url": "", "note": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_the_page_shows_the_policy_in_force(admin_client_):
    routing_policy_current()
    html = admin_client_.get(URL).content.decode()
    assert 'data-version="1"' in html
    assert 'name="minconf_Pog"' in html
    assert reverse("clinical:thresholds") == URL


def test_a_change_makes_a_new_audited_version_with_history(admin_client_):
    v1 = routing_policy_current()
    r = admin_client_.post(
        URL, _form(min_confidence="0.65", review_policy="all", minconf_A="0.7", note="roll-out")
    )
    assert r.status_code == 302
    v2 = routing_policy_current()
    assert v2.version == v1.version + 1
    assert v2.min_confidence == 0.65
    assert v2.review_policy == "all"
    assert v2.min_confidence_per_landmark == {"A": 0.7}
    assert v2.created_by == admin_client_.user
    entry = AuditEvent.objects.get(action=AuditAction.THRESHOLDS_CHANGE)
    assert entry.details["changes"]["min_confidence"] == {"old": v1.min_confidence, "new": 0.65}
    assert entry.details["to_version"] == v2.version
    assert entry.ip == "127.0.0.1"
    rows = policy_history()
    changed = {c["field"]: (c["old"], c["new"]) for c in rows[0]["changes"]}
    assert changed["review_policy"] == ("exceptions_only", "all")
    html = admin_client_.get(URL).content.decode()
    assert "roll-out" in html
    assert "min_confidence" in html


@pytest.mark.parametrize(
    ("overrides", "field_text"),
    [
        ({"escalation_chain": ""}, "cannot be empty"),
        ({"escalation_chain": "radiologist, boss"}, "Unknown level"),
        ({"plausibility": json.dumps({"ranges": {"SNA": [105, 60]}})}, "min &lt; max"),
        ({"plausibility": "{not json"}, "not valid JSON"),
        ({"min_confidence": "1.5"}, "less than or equal to 1"),
        ({"sla_urgent": "0"}, "greater than or equal to 1"),
        ({"notify_senior": "not-an-address"}, "not an email address"),
        ({"allowed_modalities": ""}, "required"),
    ],
)
def test_invalid_changes_are_refused(admin_client_, overrides, field_text):
    before = routing_policy_current().version
    r = admin_client_.post(URL, _form(**overrides))
    assert r.status_code == 400
    assert field_text in r.content.decode()
    assert RoutingPolicy.objects.order_by("-version").first().version == before
    assert not AuditEvent.objects.filter(action=AuditAction.THRESHOLDS_CHANGE).exists()


def test_no_change_is_not_a_version(admin_user):
    current = routing_policy_current()
    with pytest.raises(InvalidInput) as err:
        thresholds_update(user=admin_user, changes={"min_confidence": current.min_confidence})
    assert err.value.code == "no_change"


def test_notification_targets_survive_versions_made_elsewhere(admin_user):
    targets = {"emails": {"admin": ["ops@example.test"]}, "webhook_url": "https://h.example.test"}
    thresholds_update(user=admin_user, changes={"notifications": targets})
    routing_policy_update(user=admin_user, min_confidence=0.4)  # the lead's service: no field
    assert notifications_current() == targets


def test_sla_change_applies_to_the_next_escalation(admin_user):
    thresholds_update(user=admin_user, changes={"sla_minutes": {"urgent": 15, "normal": 120}})
    assert routing_policy_current().sla_minutes == {"urgent": 15, "normal": 120}


# API clients never get a session (tests/accounts/test_doors.py, tests/test_permissions.py)
@pytest.mark.parametrize("role", ["radiologist", "senior_radiologist", "engineer"])
def test_only_admins_open_the_threshold_page(client_for, role):
    c = client_for(role)
    assert c.get(URL).status_code == 403
    assert c.post(URL, _form(min_confidence="0.1")).status_code == 403
    assert RoutingPolicy.objects.filter(min_confidence=0.1).count() == 0


def test_an_invalid_form_opens_with_a_summary_above_the_fields(admin_client_):
    """Issue 11: the only error showed ~1,240 px down, with no summary."""
    r = admin_client_.post(URL, _form(sla_urgent="0", notify_senior="not-an-address"))
    assert r.status_code == 400
    html = r.content.decode()
    summary = html.index('id="error-summary"')
    assert summary < html.index("<fieldset>")  # before the first field
    block = html[summary : html.index("</div>", summary)]
    assert "Not saved: 2 fields to fix" in block
    assert 'href="#id_sla_urgent"' in block
    assert 'href="#id_notify_senior"' in block
