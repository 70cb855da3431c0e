"""Create the role groups and their permissions.

A frozen copy of apps.accounts.roles (migrations must not import app code that
may change later); tests/accounts/test_roles.py checks the two still agree.
"""

from django.db import migrations

PERMISSIONS = {
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
}
_RADIOLOGIST = ["view_phi", "view_deidentified", "review_study", "report_issue"]
ROLE_PERMISSIONS = {
    "radiologist": _RADIOLOGIST,
    "senior_radiologist": [*_RADIOLOGIST, "work_escalations"],
    "engineer": ["view_deidentified", "report_issue", "triage_issue", "register_model"],
    "admin": list(PERMISSIONS),
    "api_client": ["submit_study", "report_issue"],
}


def forwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ct, _ = ContentType.objects.get_or_create(app_label="accounts", model="user")
    perms = {}
    for codename, name in PERMISSIONS.items():
        perms[codename], _ = Permission.objects.get_or_create(
            content_type=ct, codename=codename, defaults={"name": name}
        )
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*(perms[c] for c in codenames))


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
