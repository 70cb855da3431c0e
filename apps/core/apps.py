from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Load the Celery app so shared_task binds to it in web processes too.
        import mahtqa.celery  # noqa: F401
