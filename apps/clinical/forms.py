"""The threshold administration form: plain fields in, a dict of policy values out."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.clinical.choices import EscalationLevel, ReviewPolicy
from apps.clinical.models import RoutingPolicy
from mahtqa.cephalometry.landmarks import ABBREVIATIONS

SEVERITIES = [("info", "info"), ("warning", "warning"), ("high", "high")]
LEVELS = [(lv.value, lv.label) for lv in EscalationLevel]


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


ROUTING_MODES = [
    ("risk_controlled", "Risk-controlled: thresholds derived from out-of-fold data"),
    ("raw_thresholds", "Raw per-landmark confidence limits (experts)"),
]
RISKS = [(f"{r:g}", f"{r:.0%} of cases released unsafe, at most") for r in (0.01, 0.02, 0.05, 0.1)]


class ThresholdsForm(forms.Form):
    routing_mode = forms.ChoiceField(choices=ROUTING_MODES, widget=forms.RadioSelect)
    tolerated_risk = forms.TypedChoiceField(
        choices=RISKS, coerce=float, label="Tolerated risk",
        help_text="share of all cases that may be released with a landmark > 4 mm off",
    )  # fmt: skip
    new_sites_review_all = forms.BooleanField(
        required=False, label="Every new site: review all cases until it is onboarded"
    )
    min_confidence = forms.FloatField(min_value=0, max_value=1, help_text="0..1, every landmark")
    max_ood_score = forms.FloatField(help_text="above this, the radiograph is out of distribution")
    review_policy = forms.ChoiceField(choices=ReviewPolicy.choices, widget=forms.RadioSelect)
    urgent_severities = forms.MultipleChoiceField(
        choices=SEVERITIES, required=False, widget=forms.CheckboxSelectMultiple
    )
    sla_urgent = forms.IntegerField(min_value=1, label="SLA urgent (minutes)")
    sla_normal = forms.IntegerField(min_value=1, label="SLA normal (minutes)")
    escalation_chain = forms.CharField(
        required=False,
        help_text="levels in order, comma-separated: radiologist, senior_radiologist, admin",
    )
    allowed_modalities = forms.CharField(help_text="DICOM modality codes, comma-separated")
    plausibility = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False,
        help_text='JSON: {"ranges": {"SNA": [60, 105]}, "severities": {"sna_range": "high"}, ...}',
    )  # fmt: skip
    notify_senior = forms.CharField(required=False, label="Notify (senior) addresses")
    notify_admin = forms.CharField(required=False, label="Notify (admin) addresses")
    webhook_url = forms.URLField(
        required=False, label="Webhook URL (optional)", assume_scheme="https"
    )
    note = forms.CharField(required=False, max_length=200, label="Note for the history")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for abbr in ABBREVIATIONS:
            self.fields[f"minconf_{abbr}"] = forms.FloatField(
                required=False, min_value=0, max_value=1, label=f"Min confidence {abbr}"
            )

    @classmethod
    def from_policy(cls, policy: RoutingPolicy, notifications: dict) -> ThresholdsForm:
        emails = notifications.get("emails", {})
        initial = {
            "routing_mode": policy.routing_mode,
            "tolerated_risk": f"{policy.tolerated_risk:g}",
            "new_sites_review_all": policy.new_sites_review_all,
            "min_confidence": policy.min_confidence,
            "max_ood_score": policy.max_ood_score,
            "review_policy": policy.review_policy,
            "urgent_severities": list(policy.urgent_severities),
            "sla_urgent": policy.sla_minutes.get("urgent"),
            "sla_normal": policy.sla_minutes.get("normal"),
            "escalation_chain": ", ".join(policy.escalation_chain),
            "allowed_modalities": ", ".join(policy.allowed_modalities),
            "plausibility": json.dumps(policy.plausibility or {}, indent=1),
            "notify_senior": ", ".join(emails.get(EscalationLevel.SENIOR, [])),
            "notify_admin": ", ".join(emails.get(EscalationLevel.ADMIN, [])),
            "webhook_url": notifications.get("webhook_url", ""),
        }
        for abbr, value in (policy.min_confidence_per_landmark or {}).items():
            initial[f"minconf_{abbr}"] = value
        return cls(initial=initial)

    def clean_plausibility(self) -> dict:
        text = self.cleaned_data["plausibility"].strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object")
        return value

    def clean_escalation_chain(self) -> list[str]:
        chain = _split(self.cleaned_data["escalation_chain"])
        if not chain:
            raise forms.ValidationError("The escalation chain cannot be empty.")
        bad = [c for c in chain if c not in EscalationLevel.values]
        if bad:
            raise forms.ValidationError(f"Unknown level(s): {', '.join(bad)}")
        if len(set(chain)) != len(chain):
            raise forms.ValidationError("A level appears twice.")
        return chain

    def clean_allowed_modalities(self) -> list[str]:
        return [m.upper() for m in _split(self.cleaned_data["allowed_modalities"])]

    def _emails(self, name: str) -> list[str]:
        addresses = _split(self.cleaned_data.get(name, ""))
        for a in addresses:
            try:
                forms.EmailField().clean(a)
            except forms.ValidationError:
                self.add_error(name, f"{a!r} is not an email address")
        return addresses

    def clean(self) -> dict:
        data = super().clean()
        self._notify = {
            "emails": {
                EscalationLevel.SENIOR.value: self._emails("notify_senior"),
                EscalationLevel.ADMIN.value: self._emails("notify_admin"),
            },
            "webhook_url": data.get("webhook_url") or "",
        }
        return data

    def changes(self) -> dict[str, Any]:
        d = self.cleaned_data
        per = {a: d[f"minconf_{a}"] for a in ABBREVIATIONS if d.get(f"minconf_{a}") is not None}
        emails = {k: v for k, v in self._notify["emails"].items() if v}
        return {
            "routing_mode": d["routing_mode"],
            "tolerated_risk": d["tolerated_risk"],
            "new_sites_review_all": d["new_sites_review_all"],
            "min_confidence": d["min_confidence"],
            "min_confidence_per_landmark": per,
            "max_ood_score": d["max_ood_score"],
            "review_policy": d["review_policy"],
            "urgent_severities": list(d["urgent_severities"]),
            "plausibility": d["plausibility"],
            "sla_minutes": {"urgent": d["sla_urgent"], "normal": d["sla_normal"]},
            "escalation_chain": d["escalation_chain"],
            "allowed_modalities": d["allowed_modalities"],
            "notifications": {"emails": emails, "webhook_url": self._notify["webhook_url"]},
        }
