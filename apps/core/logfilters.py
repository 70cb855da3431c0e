"""Logging filter that redacts DICOM PersonName-looking values.

Defence in depth only: the rule is never to log PHI at all. A DICOM PN value
separates its components with ``^`` (``Family^Given^Middle^Prefix^Suffix``);
any token containing a caret is replaced.
"""

from __future__ import annotations

import logging
import re

# A run of non-space, non-delimiter characters containing at least one caret.
_PN_CHAR = r"[^\s^\"'<>=:,;()\[\]{}|]"
PERSON_NAME_RE = re.compile(rf"{_PN_CHAR}*(?:\^{_PN_CHAR}*)+")
REDACTED = "[REDACTED-PN]"


def redact_person_names(text: str) -> str:
    if "^" not in text:
        return text
    # Only tokens with a letter: traceback markers (``^^^^``) are not names.
    return PERSON_NAME_RE.sub(
        lambda m: REDACTED if any(c.isalpha() for c in m.group()) else m.group(), text
    )


class RedactPersonNameFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not crash the app
            message = str(record.msg)
        if "^" in message:
            record.msg = redact_person_names(message)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and "^" in record.exc_text:
            record.exc_text = redact_person_names(record.exc_text)
        return True
