from django.db import models


class Category(models.TextChoices):
    ENVIRONMENT = "environment", "Environment"
    DATA = "data", "Data"
    TRAINING = "training", "Training"
    EVALUATION = "evaluation", "Evaluation"
    DEPLOYMENT = "deployment", "Deployment"
    CLINICAL = "clinical", "Clinical"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


class Status(models.TextChoices):
    OPEN = "open", "Open"
    TRIAGED = "triaged", "Triaged"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened"


# Statuses in which an issue is still being worked (counts for due times).
ACTIVE_STATUSES = (Status.OPEN, Status.TRIAGED, Status.IN_PROGRESS, Status.REOPENED)
DONE_STATUSES = (Status.RESOLVED, Status.CLOSED)

# Allowed manual transitions (automatic reopening on recurrence bypasses this).
TRANSITIONS: dict[str, set[str]] = {
    Status.OPEN: {Status.TRIAGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED},
    Status.TRIAGED: {Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED, Status.OPEN},
    Status.IN_PROGRESS: {Status.RESOLVED, Status.TRIAGED, Status.CLOSED},
    Status.RESOLVED: {Status.CLOSED, Status.REOPENED},
    Status.CLOSED: {Status.REOPENED},
    Status.REOPENED: {Status.TRIAGED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED},
}


class Source(models.TextChoices):
    WEB = "web", "Web form"
    API = "api", "API / client module"
    CELERY = "celery", "Failed Celery task"
    CHECK = "check", "Failed check"
    SEED = "seed", "Demo seed"


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    COMMENT = "comment", "Comment"
    STATUS = "status", "Status change"
    SEVERITY = "severity", "Severity change"
    ASSIGNMENT = "assignment", "Assignment"
    RECURRENCE = "recurrence", "Recurrence (reopened)"
    MERGE = "merge", "Merge"
    SPLIT = "split", "Split"


class NotificationKind(models.TextChoices):
    NEW_CRITICAL = "new_critical", "New critical issue"
    REGRESSION = "regression", "Regression"
    OVERDUE = "overdue", "Past due"
