"""Checks of text every API's bodies and queries share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["NameQuery", "clean_text"]


def clean_text(value: str) -> str:
    """Reject text a database cannot store: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


NameQuery = Annotated[str, AfterValidator(clean_text)]
"""A text query parameter (a workspace name)."""
