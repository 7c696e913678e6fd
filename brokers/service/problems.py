"""The refusal every layer of the service raises: an HTTP status and the fields at fault (no web framework here)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ApiError"]


class ApiError(Exception):
    """A refusal with an HTTP status and the fields at fault.

    Args:
        status: HTTP status code.
        detail: One-line summary.
        errors: Items ``{name, description, field, location}``.
        headers: Extra response headers.
    """

    def __init__(self, status: int, detail: str, errors: Sequence[dict[str, str]] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers

    @classmethod
    def one(cls, status: int, name: str, description: str, field: str, location: str = "body",
            headers: dict[str, str] | None = None) -> ApiError:
        """Build an error about a single field."""
        return cls(status, description, [{"name": name, "description": description, "field": field,
                                          "location": location}], headers)
