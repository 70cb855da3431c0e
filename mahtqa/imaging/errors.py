"""The one exception type of the imaging package.

Every failure to read, validate, decode or de-identify an image is raised as an
:class:`ImagingError` with a stable, snake_case ``code`` that callers can store
and branch on, and a human ``message``. Messages only ever state technical facts
(sizes, tags, transfer syntaxes): never patient data.
"""

from __future__ import annotations

EMPTY_FILE = "empty_file"
NOT_DICOM = "not_dicom"
TRUNCATED = "truncated"
INVALID_DICOM = "invalid_dicom"
NO_PIXEL_DATA = "no_pixel_data"
MULTI_FRAME = "multi_frame"
NOT_GRAYSCALE = "not_grayscale"
UNSUPPORTED_TRANSFER_SYNTAX = "unsupported_transfer_syntax"
IMAGE_TOO_LARGE = "image_too_large"
IMAGE_TOO_SMALL = "image_too_small"
MODALITY_NOT_ALLOWED = "modality_not_allowed"
MISSING_UID = "missing_uid"

ERROR_CODES: frozenset[str] = frozenset(
    {
        EMPTY_FILE,
        NOT_DICOM,
        TRUNCATED,
        INVALID_DICOM,
        NO_PIXEL_DATA,
        MULTI_FRAME,
        NOT_GRAYSCALE,
        UNSUPPORTED_TRANSFER_SYNTAX,
        IMAGE_TOO_LARGE,
        IMAGE_TOO_SMALL,
        MODALITY_NOT_ALLOWED,
        MISSING_UID,
    }
)


class ImagingError(Exception):
    """A refused or unreadable image.

    ``code`` is one of :data:`ERROR_CODES`; ``message`` is safe to show and log.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown imaging error code: {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImagingError], tuple[str, str]]:
        # Keeps the error picklable (Celery results, multiprocessing).
        return (type(self), (self.code, self.message))
