from django.db import models


class Heartbeat(models.Model):
    """Last time a worker ran the ping task for ``source`` (beat, a test, ...)."""

    source = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
