"""The report_training permission (training scripts report runs) for engineers, admins
and API clients. A frozen copy of the change to apps.accounts.roles."""

from django.db import migrations

CODENAME = "report_training"
NAME = "Report training runs (metrics, weights) from scripts"
ROLES = ("engineer", "admin", "api_client")


def forwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ct, _ = ContentType.objects.get_or_create(app_label="accounts", model="user")
    perm, _ = Permission.objects.get_or_create(content_type=ct, codename=CODENAME, defaults={"name": NAME})
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(perm)


def backwards(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(codename=CODENAME, content_type__app_label="accounts").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_alter_user_options")]

    operations = [migrations.RunPython(forwards, backwards)]
