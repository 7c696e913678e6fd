"""Where a configuration comes from: a mapping, JSON text, or a JSON file, turned into parsed JSON data."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from .model import WorkspaceConfiguration

__all__ = ["ConfigSource", "SourceError", "read_source"]

ConfigSource = Union[Mapping[str, Any], str, bytes, "os.PathLike[str]", WorkspaceConfiguration]
"""A configuration as accepted everywhere: a dict, JSON text, a path to a JSON file, or a loaded one."""


class SourceError(ValueError):
    """The configuration source could not be read or parsed (carries a validation error item)."""

    def __init__(self, name: str, description: str) -> None:
        self.item = {"name": name, "description": description, "path": ""}
        super().__init__(description)


def read_source(source: object) -> object:
    """Turn a configuration source into parsed JSON data (not yet validated).

    Args:
        source: A mapping, JSON text (``str``/``bytes``), or a path (``os.PathLike`` or a ``str`` that does
            not look like JSON) to a JSON file.

    Returns:
        The parsed JSON value; a mapping is returned as is.

    Raises:
        SourceError: The text is not JSON or the file cannot be read.
    """
    if isinstance(source, WorkspaceConfiguration):
        return source.to_dict(mask=False)
    if isinstance(source, Mapping):
        return source
    text: str | bytes
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        path = Path(os.fspath(source))
        try:
            text = path.read_bytes()
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "cannot be read"
            raise SourceError("unreadable_file", f"configuration file {str(path)[:200]!r}: {reason}") from None
    elif isinstance(source, (str, bytes)):
        text = source
    else:
        return source
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise SourceError("invalid_json", f"the configuration is not valid JSON{where}") from None


def _looks_like_path(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and stripped[0] not in "{[\"" and len(text) < 4096 and "\n" not in text and (
        os.sep in text or text.endswith(".json") or os.path.exists(text)
    )
