"""The one way a notification reaches a webhook: a JSON POST over http(s)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def webhook_url_ok(url: str) -> bool:
    return str(url or "").startswith(("http://", "https://"))


def webhook_post(url: str, payload: dict[str, Any], *, timeout: float = 5.0) -> None:
    """POST ``payload`` as JSON to ``url``. Raises OSError (URLError, timeouts, HTTP errors)
    or ValueError (not an http(s) URL); the caller records the failure and retries."""
    if not webhook_url_ok(url):
        raise ValueError("webhook URL must be http(s)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=timeout).close()  # noqa: S310
