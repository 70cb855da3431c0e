"""Critical findings of a validation run file (or fold into) one issue of category
data through the issue tracker, linked to the dataset version. Repeated runs of the
same version with the same critical codes fold into the same issue."""

from __future__ import annotations

from django.db.models import Count

from apps.datasets.models import ValidationRun
from apps.issues.choices import Category, Severity
from apps.issues.services import issue_report_check_failure


def validation_run_file_issue(*, run_id: int) -> int | None:
    """The issue id, or None when the run has no critical finding. Safe to run twice."""
    run = ValidationRun.objects.select_related("version__dataset").get(pk=run_id)
    critical = dict(
        run.findings.filter(severity="critical").values_list("code").annotate(n=Count("id"))
    )
    if not critical:
        return None
    version = run.version
    codes = ", ".join(f"{code} x{n}" for code, n in sorted(critical.items()))
    issue = issue_report_check_failure(
        app="datasets",
        check="validation",
        error=f"{version.label}: " + ",".join(sorted(critical)),
        severity=Severity.HIGH,
        category=Category.DATA,
        dataset_version=version,
        description=(
            f"Validation run {run.pk} of {version.label} found critical problems: {codes}. "
            f"Open the report to see each image."
        ),
        details={"dataset_version": version.pk, "run": run.pk, "critical": critical},
    )
    ValidationRun.objects.filter(pk=run.pk).update(issue_id=issue.pk)
    return issue.pk
