from django.db import models


class Layout(models.TextChoices):
    ISBI = "isbi", "ISBI (images/ + annotations/<annotator>/)"
    CSV = "csv", "CSV landmark table"
    JSON = "json", "JSON landmark table"
    DICOM = "dicom", "DICOM folder"


class SourceKind(models.TextChoices):
    FOLDER = "folder", "Folder under a dataset root"
    UPLOAD = "upload", "Uploaded zip"
    DERIVED = "derived", "Derived (corrected annotations)"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"


class SuspectStatus(models.TextChoices):
    OPEN = "open", "Open"
    CONFIRMED = "confirmed", "Confirmed (annotation is wrong)"
    DISMISSED = "dismissed", "Dismissed (annotation is right)"
