from django.db import models


class Heartbeat(models.Model):
    """Last time a worker ran the ping task for ``source`` (beat, a test, ...)."""

    source = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class ReadinessCheck(models.Model):
    """One recorded readiness run (beat every minute, and each /readyz call): uptime data."""

    checked_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=20)  # "beat" or "readyz"
    ok = models.BooleanField()
    results = models.JSONField(default=dict)  # {check: {status, latency_ms, error?}}

    class Meta:
        ordering = ["-checked_at"]

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'fail'} @ {self.checked_at:%Y-%m-%d %H:%M:%S}"
