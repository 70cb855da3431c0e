from __future__ import annotations

from django import forms

from apps.issues.choices import Category, Severity
from apps.issues.models import IssueSettings


class IssueReportForm(forms.Form):
    title = forms.CharField(max_length=200)
    category = forms.ChoiceField(choices=Category.choices)
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.MEDIUM)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    reproduction_steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, help_text="One step per line."
    )
    dataset_name = forms.CharField(max_length=200, required=False)
    dataset_version = forms.IntegerField(required=False, help_text="Dataset version id, if any.")
    study = forms.UUIDField(required=False, help_text="The study's public id, if any.")
    model_version = forms.IntegerField(required=False, help_text="Model version id, if any.")

    def steps(self) -> list[str]:
        text = self.cleaned_data.get("reproduction_steps") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class IssueSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = IssueSettings
        fields = [
            "critical_due_minutes", "high_due_minutes", "medium_due_minutes", "low_due_minutes",
            "notify_window_minutes", "notify_emails", "webhook_url",
        ]  # fmt: skip
        widgets = {"notify_emails": forms.Textarea(attrs={"rows": 3})}

    def clean(self):
        data = super().clean()
        for name, value in list(data.items()):
            if name.endswith("_minutes") and value is not None and value <= 0:
                self.add_error(name, "Must be a positive number of minutes.")
        return data
