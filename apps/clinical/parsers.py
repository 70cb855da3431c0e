"""Request body parsers for DICOM uploads."""

from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser

from apps.core.errors import PayloadTooLarge


class DicomParser(BaseParser):
    """``Content-Type: application/dicom``: the body is one Part-10 instance (bytes)."""

    media_type = "application/dicom"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        limit = settings.DICOM_MAX_UPLOAD_BYTES
        if stream is None:  # empty body
            return b""
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge("payload_too_large", f"The file is larger than {limit} bytes.")
        return data
