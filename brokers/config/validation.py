"""Validate workspace configurations against the JSON Schema, in words a person understands.

:func:`validate` never raises: whatever it is given (``None``, numbers, broken JSON, a huge string), it answers
with the documented ``{is_valid, errors, warnings}`` shape, each item carrying ``name``, ``description`` and a
JSON-pointer ``path``. It reports every error at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from .endpoints import AccessPolicy
from .lookup import BrokerLookup
from .messages import describe_error, item, json_type
from .model import BUILTIN_CONFIGS, WorkspaceConfiguration
from .schema import validator
from .source import SourceError, read_source
from .warn import warnings_for

__all__ = ["ValidationResult", "check", "validate"]

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """The outcome of a validation: the documented response shape."""

    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        """True when there are no errors (warnings do not count)."""
        return not self.errors

    def __bool__(self) -> bool:
        return self.is_valid

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"is_valid": ..., "errors": [...], "warnings": [...]}``."""
        return {"is_valid": self.is_valid, "errors": list(self.errors), "warnings": list(self.warnings)}


def _errors(validating: Draft202012Validator, data: Any) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(validating.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        for found in describe_error(error):
            if (found["name"], found["path"]) not in seen:
                seen.add((found["name"], found["path"]))
                errors.append(found)
    return errors


def _third_party_errors(data: Mapping[str, Any], lookup: BrokerLookup | None) -> list[dict[str, str]] | None:
    """Validate a broker type registered by a third party, or return None if the type is not one."""
    broker = data.get("broker")
    if (lookup is None or not isinstance(broker, Mapping) or not isinstance(broker.get("type"), str)
            or broker["type"] in BUILTIN_CONFIGS):
        return None
    try:
        spec = lookup(broker["type"])
    except Exception:  # a broken plug-in is reported as an unknown type
        log.debug("looking up broker type %r failed", broker["type"], exc_info=True)
        return None
    if spec is None:
        return None
    sub_schema = spec.config_schema or {"type": "object"}
    errors = _errors(validator(), {**data, "broker": {"type": "host", "host_path": "/"}})
    wrapped = Draft202012Validator({"type": "object", "properties": {"broker": sub_schema}})
    for error in wrapped.iter_errors({"broker": dict(broker)}):
        errors.extend(describe_error(error))
    return errors


def check(source: object, lookup: BrokerLookup | None = None) -> tuple[Any, list[dict[str, str]]]:
    """Parse and schema-check a configuration source.

    Args:
        source: A dict, JSON text, or a path to a JSON file.
        lookup: Finds third-party broker types (their ``config_schema``); None knows the built-ins only.

    Returns:
        The parsed data and the list of errors (empty when valid).
    """
    try:
        data = read_source(source)
    except SourceError as exc:
        return None, [exc.item]
    if not isinstance(data, Mapping):
        return data, [item("not_an_object", f"the configuration must be a JSON object, not {json_type(data)}")]
    third = _third_party_errors(data, lookup)
    if third is not None:
        return data, third
    return data, _errors(validator(), data)


def validate(config: object, previous: object = None, *, check_access: bool = True,
             lookup: BrokerLookup | None = None, policy: AccessPolicy | None = None) -> ValidationResult:
    """Validate a workspace configuration without raising.

    Args:
        config: A dict, JSON text, or a path to a JSON file. Anything else is reported as an error.
        previous: The configuration this one replaces, if any; a change of broker type gives the
            ``broker_type`` warning.
        check_access: Also try to reach the store (S3: the ``bucket_access`` warning), through ``lookup``.
        lookup: Finds the broker class of a type (third-party schemas, access checks).
        policy: What access checks may reach (endpoints, ambient credentials); None: anything.

    Returns:
        The result; ``result.to_dict()`` is the documented ``{is_valid, errors, warnings}`` response.
    """
    try:
        data, errors = check(config, lookup)
        if errors:
            return ValidationResult(errors=errors)
        loaded = WorkspaceConfiguration.from_valid_dict(data)
        access = lookup if check_access else None
        return ValidationResult(warnings=warnings_for(loaded, previous, access, policy))
    except RecursionError:
        return ValidationResult(errors=[item("too_deep", "the configuration is nested too deeply")])
    except Exception as exc:
        log.exception("unexpected error while validating a configuration")
        return ValidationResult(errors=[item("internal_error", f"the configuration could not be validated "
                                                               f"({type(exc).__name__})")])
