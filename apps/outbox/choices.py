from django.db import models


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be published"
    SENT = "sent", "Published, not yet picked up by a worker"
    DONE = "done", "Picked up by a worker"
    DEAD = "dead", "Given up (too many publishes without a pick-up)"


LIVE_STATUSES = (OutboxStatus.PENDING, OutboxStatus.SENT)
