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


class CaseEventKind(models.TextChoices):
    ROUTED = "routed", "Routed to review"
    CLAIMED = "claimed", "Claimed"
    RELEASED = "released", "Returned to the queue"
    CLAIM_EXPIRED = "claim_expired", "Idle claim returned to the queue"
    ESCALATED = "escalated", "Escalated"
    OVERDUE = "overdue", "Overdue: escalated automatically"
    NOTIFIED = "notified", "Notified"
    DECIDED = "decided", "Decided"
    TAKEN_OVER = "taken_over", "Taken over"
    RECALLED = "recalled", "Recalled for review (incident)"


class AuditAction(models.TextChoices):
    CASE_OPEN_PHI = "case_open_phi", "Opened a case with PHI"
    CASE_OPEN_DEID = "case_open_deid", "Opened a case de-identified"
    CASE_CLAIM = "case_claim", "Claimed a case"
    CASE_DECIDE = "case_decide", "Decided a case"
    INCIDENT_ACTION = "incident_action", "Ran an incident action"
    CASE_ESCALATE = "case_escalate", "Escalated a case"
    CASE_TAKEOVER = "case_takeover", "Took over a claimed case"
    SITE_REVIEW_ALL = "site_review_all", "Set a site to review all"
    SITE_CALIBRATE = "site_calibrate", "Proposed a site calibration"
    SITE_ACCEPT = "site_accept", "Accepted a site calibration"
    SITE_REJECT = "site_reject", "Rejected a site calibration"
    THRESHOLDS_CHANGE = "thresholds_change", "Changed thresholds"
    DATASET_REGISTER = "dataset_register", "Registered a dataset version"
    MODEL_ACTIVATE = "model_activate", "Activated a model version"
    MODEL_ROLLBACK = "model_rollback", "Rolled back the model"
    MODEL_SHADOW = "model_shadow", "Started or stopped a shadow model"
    GATE_CHANGE = "gate_change", "Changed the release gates"
    DATASET_SUSPECT_DECIDE = "dataset_suspect_decide", "Decided a suspect annotation"
    DATASET_CORRECT = "dataset_correct", "Derived a corrected dataset version"


# What a reviewer reads for each routing reason / finding code (the code stays on hover).
REASON_LABELS: dict[str, str] = {
    "low_confidence": "Low confidence",
    "out_of_distribution": "Unusual radiograph",
    "out_of_distribution_site": "Unusual for this site",
    "incident_recall": "Recalled during an incident",
    "spacing_unknown": "Pixel spacing unknown",
    "review_all": "Review-all policy",
    "confident_plausible": "Confident and plausible",
    "order_n_s": "N not in front of S",
    "order_a_b": "A and B out of order",
    "order_b_pog": "B and Pog out of order",
    "order_me_lowest": "Me not the lowest point",
    "order_gn_between": "Gn not between Pog and Me",
    "shape_outlier": "Implausible shape",
    "predicted_gross_error": "Possible gross error",
    "risk_not_certified": "Risk not certified",
    "site_review_all": "Site not onboarded",
}


def reason_label(code: str) -> str:
    """A human label for a reason or finding code; unknown codes read as themselves."""
    if code in REASON_LABELS:
        return REASON_LABELS[code]
    if code.startswith("range_"):
        return f"{code[len('range_') :]} out of range"
    return code.replace("_", " ")


def reason_chip(reason: dict) -> str:
    """A routing reason as a reviewer reads it: its label, and its landmark if it has one."""
    return f"{reason_label(reason.get('code', ''))} {reason.get('landmark') or ''}".strip()
