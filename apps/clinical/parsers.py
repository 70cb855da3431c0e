"""Request body parsers for DICOM uploads."""

from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.core.requests import Body, BodyIncomplete, BodyTooLarge, body_read


class DicomParser(BaseParser):
    """``Content-Type: application/dicom``: the body is one Part-10 instance, read whole
    with its SHA-256 (``apps.core.requests.Body``)."""

    media_type = "application/dicom"

    def parse(self, stream, media_type=None, parser_context=None) -> Body:
        limit = settings.DICOM_MAX_UPLOAD_BYTES
        try:
            return body_read(stream=stream, limit=limit)
        except BodyTooLarge:
            raise PayloadTooLarge(
                "payload_too_large", f"The file is larger than {limit} bytes."
            ) from None
        except BodyIncomplete:
            raise InvalidInput(
                "incomplete_body", "The body ended before its Content-Length: send it again."
            ) from None
