"""Domain errors: what went wrong, in the domain's words, without HTTP.

Services raise these; only the edges turn them into a status code: the DRF
exception handler (``apps.core.exceptions``) for the API and
``apps.core.error_pages`` for HTML pages, both through the one table
``apps.core.exceptions.DOMAIN_STATUS``. Pick the subclass by meaning::

    raise Conflict("not_claimed", "Claim the case before deciding it.")
    raise InvalidInput("invalid_policy", "The routing policy is not valid.", details=errors)

``code`` is stable snake_case (clients and tests match on it), ``message`` is
for a human, ``details`` is a JSON-able dict (empty when there is nothing to say).
Plain Python: no Django, no DRF.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class. Raised as is, it counts as invalid input (like :class:`InvalidInput`)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.details!r})"


class InvalidInput(DomainError):
    """The request is wrong as sent: a bad value, a missing field, nothing to change."""


class Forbidden(DomainError):
    """The actor may not do this (role, level, ownership)."""


class NotFound(DomainError):
    """The thing does not exist, or is not visible to the actor (indistinguishable)."""


class Conflict(DomainError):
    """The request is valid but the current state does not allow it (claimed, decided...)."""


class PayloadTooLarge(DomainError):
    """The upload or body is over a size limit."""


class LengthRequired(DomainError):
    """The body must come with its length (no chunked transfer encoding)."""


class UnsupportedMediaType(DomainError):
    """The content is of a kind we do not accept (e.g. a DICOM transfer syntax)."""
