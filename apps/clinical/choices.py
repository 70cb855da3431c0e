from django.db import models


class StudyStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    RELEASED = "released", "Released"
    IN_REVIEW = "in_review", "In review"
    REVIEWED = "reviewed", "Reviewed"
    FAILED = "failed", "Failed"


class SpacingSource(models.TextChoices):
    PIXEL_SPACING = "PixelSpacing", "PixelSpacing"
    IMAGER_PIXEL_SPACING = "ImagerPixelSpacing", "ImagerPixelSpacing (detector plane)"
    UNKNOWN = "unknown", "Unknown"


class Priority(models.TextChoices):
    NORMAL = "normal", "Normal"
    URGENT = "urgent", "Urgent"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    DONE = "done", "Done"


class EscalationLevel(models.TextChoices):
    RADIOLOGIST = "radiologist", "Radiologist"
    SENIOR = "senior_radiologist", "Senior radiologist"
    ADMIN = "admin", "Admin"


class ReviewOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    CORRECTED = "corrected", "Corrected and accepted"
    REJECTED = "rejected", "Rejected (image unusable)"


class ReviewPolicy(models.TextChoices):
    EXCEPTIONS_ONLY = "exceptions_only", "Review exceptions only"
    ALL = "all", "Review all cases"


class Destination(models.TextChoices):
    RELEASED = "released", "Released"
    REVIEW = "review", "Review"
