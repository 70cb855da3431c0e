from django.apps import AppConfig


class IssuesConfig(AppConfig):
    name = "apps.issues"
    label = "issues"
    verbose_name = "Engineering issues"

    def ready(self) -> None:
        from apps.issues import signals  # noqa: F401 - connects the receivers
