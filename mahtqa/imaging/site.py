"""Which site (hospital and device) a radiograph comes from, as a keyed, de-identified key.

The key is an HMAC-SHA256 of the normalised InstitutionName, Manufacturer,
ManufacturerModelName and StationName under a secret key: stable for a site, not
reversible, and it names no hospital in the database, logs or exports. A header
that carries none of the four is the ``default`` site. Only the device (manufacturer
and model) is kept readable, so an admin can tell sites apart.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pydicom.dataset import Dataset

from mahtqa.imaging import _parse

DEFAULT_SITE = "default"
_FIELDS = ("InstitutionName", "Manufacturer", "ManufacturerModelName", "StationName")


@dataclass(frozen=True)
class SiteFields:
    institution: str = ""
    manufacturer: str = ""
    model: str = ""
    station: str = ""

    @property
    def empty(self) -> bool:
        return not any((self.institution, self.manufacturer, self.model, self.station))

    @property
    def device(self) -> str:
        """Readable device description (no institution, no station)."""
        return " ".join(p for p in (self.manufacturer, self.model) if p) or "unknown device"


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def site_fields(ds: Dataset) -> SiteFields:
    values = [_parse.text(ds, keyword) for keyword in _FIELDS]
    return SiteFields(*(" ".join(v.split()) for v in values))


def site_key(fields: SiteFields, *, key: bytes) -> str:
    """``site-`` and 16 hex digits of the keyed digest; ``default`` for an empty header."""
    if fields.empty:
        return DEFAULT_SITE
    text = "\x1f".join(
        _norm(v) for v in (fields.institution, fields.manufacturer, fields.model, fields.station)
    )
    return "site-" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:16]
