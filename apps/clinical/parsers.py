"""Request body parsers for DICOM uploads."""

from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser

from apps.core.errors import PayloadTooLarge

READ_PIECE = 1024 * 1024


class DicomParser(BaseParser):
    """``Content-Type: application/dicom``: the body is one Part-10 instance (bytes)."""

    media_type = "application/dicom"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        limit = settings.DICOM_MAX_UPLOAD_BYTES
        if stream is None:  # empty body
            return b""
        # In pieces of 1 MiB joined once: asked for 7 MB in one read, the server's
        # reader grows its own buffer to the whole body (copying it as it grows).
        pieces, size = [], 0
        while size <= limit:
            piece = stream.read(min(READ_PIECE, limit + 1 - size))
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
        if size > limit:
            raise PayloadTooLarge("payload_too_large", f"The file is larger than {limit} bytes.")
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
