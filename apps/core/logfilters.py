"""Logging filter that scrubs PHI from every record (patterns of :mod:`mahtqa.phi`).

Defence in depth only: the rule is never to log PHI at all. The filter applies
the same patterns as the issue tracker and the reporting client (person names,
identity fields, birth and human-written dates, DICOM UIDs, record numbers,
e-mail addresses); it does not consult the identifier index (no database
query inside a log call).
"""

from __future__ import annotations

import logging

from mahtqa.phi import REDACTED, scrub_text

__all__ = ["REDACTED", "RedactPhiFilter", "redact_phi"]


def redact_phi(text: str) -> str:
    return scrub_text(text)


class RedactPhiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not crash the app
            message = str(record.msg)
        scrubbed = redact_phi(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_phi(record.exc_text)
        return True
