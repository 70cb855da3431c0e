"""Writes for the issue tracker (keyword-only, typed). Views, API, tasks call these."""

from apps.issues.services.notify import (
    issues_overdue_notify,
    notification_deliver,
    notification_send,
)
from apps.issues.services.report import (
    issue_report,
    issue_report_check_failure,
    issue_report_task_failure,
)
from apps.issues.services.similar import issue_similar_find, similar_resolved_find
from apps.issues.services.triage import (
    issue_bulk_update,
    issue_comment,
    issue_merge,
    issue_settings_get,
    issue_settings_update,
    issue_triage,
    occurrence_split,
)

__all__ = [
    "issue_bulk_update",
    "issue_comment",
    "issue_merge",
    "issue_report",
    "issue_report_check_failure",
    "issue_report_task_failure",
    "issue_settings_get",
    "issue_settings_update",
    "issue_similar_find",
    "issue_triage",
    "issues_overdue_notify",
    "notification_deliver",
    "notification_send",
    "occurrence_split",
    "similar_resolved_find",
]
