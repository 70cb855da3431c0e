"""Permission codenames and the role -> permission map (the single source).

The data migration 0002 copies these (migrations must be frozen); a test
checks the database groups still match this map.
"""

from __future__ import annotations

from apps.accounts.choices import Role

# codename -> human name. Defined on accounts.User (Meta.permissions).
PERMISSIONS: dict[str, str] = {
    "submit_study": "Submit studies through the API",
    "view_phi": "View identified studies (PHI)",
    "view_deidentified": "View de-identified studies",
    "review_study": "Review AI landmarks (accept, correct, reject)",
    "work_escalations": "Work the escalated queue, reassign, close escalations",
    "manage_thresholds": "Configure thresholds, review policy, SLAs, escalation chain",
    "view_audit": "View the audit log",
    "report_issue": "Report engineering issues",
    "triage_issue": "Triage and resolve engineering issues",
    "register_model": "Register datasets and models, run checks and diagnostics",
    "manage_models": "Activate and roll back model versions",
    "manage_users": "Manage users and API clients",
    "report_training": "Report training runs (metrics, weights) from scripts",
}

_RADIOLOGIST = {"view_phi", "view_deidentified", "review_study", "report_issue"}

ROLE_PERMISSIONS: dict[str, set[str]] = {
    Role.RADIOLOGIST: _RADIOLOGIST,
    Role.SENIOR_RADIOLOGIST: _RADIOLOGIST | {"work_escalations"},
    Role.ENGINEER: {
        "view_deidentified",
        "report_issue",
        "triage_issue",
        "register_model",
        "report_training",
    },  # fmt: skip
    Role.ADMIN: set(PERMISSIONS),
    Role.API_CLIENT: {"submit_study", "report_issue", "report_training"},
}
