"""The workspace configuration JSON Schema: ``schemas/workspace_configuration.json``, the single source.

The file lives at the top of the repository, where other services look for it; the wheel carries it as
``brokers/schemas/workspace_configuration.json`` (a package-dir mapping in ``pyproject.toml``, no copy in the
source tree). In a source checkout (an editable install) it is read from the repository's ``schemas/`` folder.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["SCHEMA_FILE", "configuration_schema", "schema", "validator"]

SCHEMA_FILE = "workspace_configuration.json"


def _read() -> str:
    packaged = resources.files("brokers").joinpath("schemas").joinpath(SCHEMA_FILE)
    if packaged.is_file():  # an installed wheel
        return packaged.read_text("utf-8")
    return (Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_FILE).read_text("utf-8")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """Return the schema, parsed once (shared: callers must not change it; see :func:`configuration_schema`)."""
    data: dict[str, Any] = json.loads(_read())
    return data


def configuration_schema() -> dict[str, Any]:
    """Return the workspace configuration JSON Schema (2020-12) as a new dict, free to change."""
    return copy.deepcopy(schema())


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    """Return the validator of the schema, built once."""
    return Draft202012Validator(schema())
