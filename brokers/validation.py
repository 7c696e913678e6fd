"""Validate workspace configurations against the JSON Schema, in words a person understands.

:func:`validate_configuration` never raises: whatever it is given (``None``, numbers, broken JSON, a huge
string), it answers with the documented ``{is_valid, errors, warnings}`` shape, each item carrying ``name``,
``description`` and a JSON-pointer ``path``. It reports every error at once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .configuration import BUILTIN_CONFIGS, SourceError, WorkspaceConfiguration, read_source

__all__ = ["ValidationResult", "check", "schema", "validate_configuration"]

log = logging.getLogger(__name__)

_JSON_TYPES = {"object": "an object", "array": "a list", "string": "a string", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}


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


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """Return the workspace configuration JSON Schema shipped with the package."""
    text = resources.files("brokers").joinpath("schemas/workspace_configuration.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _item(name: str, description: str, path: tuple[Any, ...] | list[Any] = ()) -> dict[str, str]:
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return {"name": name, "description": description, "path": pointer}


def _label(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the configuration"


def _json_type(value: Any) -> str:
    for name, check in (("null", value is None), ("boolean", isinstance(value, bool)),
                        ("integer", isinstance(value, int)), ("number", isinstance(value, float)),
                        ("string", isinstance(value, str)), ("array", isinstance(value, list))):
        if check:
            return _JSON_TYPES[name]
    return _JSON_TYPES["object"] if isinstance(value, Mapping) else type(value).__name__


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else _json_type(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _broker_kind(instance: Any) -> str:
    return f"an {instance['type']} broker" if instance.get("type") in ("s3", "nfs") else "a host broker"


def _translate(error: ValidationError) -> Iterator[dict[str, str]]:
    path = list(error.absolute_path)
    label = _label(path)
    kind = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    sch = error.schema if isinstance(error.schema, Mapping) else {}
    secret = bool(sch.get("x-secret"))
    if kind == "required":
        for name in value:
            if isinstance(instance, Mapping) and name not in instance:
                where = f" for {_broker_kind(instance)}" if path == ["broker"] and name != "type" else ""
                if path == ["broker", "credentials"]:
                    where = " (give both keys, or omit credentials to use the AWS credential chain)"
                yield _item("missing_field", f"{_label([*path, name])} is required{where}", [*path, name])
    elif kind == "additionalProperties":
        known = set(sch.get("properties", {}))
        kind_text = f"of {_broker_kind(instance)}" if path == ["broker"] else f"of {label}"
        for name in instance:
            if name not in known:
                yield _item("unknown_field", f"{_label([*path, name])} is not a known field {kind_text}"
                            f" (known: {', '.join(sorted(known))})", [*path, name])
    elif kind == "type":
        expected = value if isinstance(value, list) else [value]
        words = " or ".join(_JSON_TYPES.get(str(t), str(t)) for t in expected)
        yield _item("wrong_type", f"{label} must be {words}, not {_json_type(instance)}", path)
    elif kind in ("enum", "const"):
        allowed = value if kind == "enum" else [value]
        choices = ", ".join(json.dumps(a) for a in allowed)
        got = "" if secret else f" (got {_shown(instance)})"
        if path == ["version"]:
            yield _item("unsupported_version", f"version must be one of {choices}{got}", path)
        elif path == ["broker", "type"]:
            yield _item("unknown_broker_type", f"broker.type must be one of {choices}{got}", path)
        else:
            yield _item("invalid_value", f"{label} must be one of {choices}{got}", path)
    else:
        message = sch.get("x-message")
        if message is None:
            message = {"minLength": "must not be empty", "maxLength": f"is too long (at most {sch.get('maxLength')})",
                       "minimum": f"must be at least {sch.get('minimum')}",
                       "maximum": f"must be at most {sch.get('maximum')}"}.get(str(kind), "is not valid")
        if kind == "maxLength" and "x-message" in sch:
            message = f"is too long (at most {sch.get('maxLength')} characters)"
        yield _item("invalid_value", f"{label} {message}", path)


def _schema_errors(data: Any) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        for item in _translate(error):
            if (item["name"], item["path"]) not in seen:
                seen.add((item["name"], item["path"]))
                errors.append(item)
    return errors


def _third_party_errors(data: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """Validate a broker type registered by a third party, or return None if the type is unknown."""
    from .registry import broker_class

    broker = data.get("broker")
    if not isinstance(broker, Mapping) or not isinstance(broker.get("type"), str) or broker["type"] in BUILTIN_CONFIGS:
        return None
    try:
        cls = broker_class(broker["type"])
    except Exception:  # an unknown or broken plug-in is reported as an unknown type
        return None
    sub_schema = getattr(cls, "config_schema", None) or {"type": "object"}
    errors = _schema_errors({**data, "broker": {"type": "host", "host_path": "/"}})
    wrapped = Draft202012Validator({"type": "object", "properties": {"broker": sub_schema}})
    for error in wrapped.iter_errors({"broker": dict(broker)}):
        errors.extend(_translate(error))
    return errors


def check(source: object) -> tuple[Any, list[dict[str, str]]]:
    """Parse and schema-check a configuration source.

    Returns:
        The parsed data and the list of errors (empty when valid).
    """
    try:
        data = read_source(source)
    except SourceError as exc:
        return None, [exc.item]
    if not isinstance(data, Mapping):
        return data, [_item("not_an_object", f"the configuration must be a JSON object, not {_json_type(data)}")]
    third = _third_party_errors(data)
    if third is not None:
        return data, third
    return data, _schema_errors(data)


def _warnings(config: WorkspaceConfiguration, previous: object, check_access: bool) -> list[dict[str, str]]:
    warnings: list[dict[str, str]] = []
    if previous is not None:
        try:
            old = read_source(previous)
        except SourceError:
            old = None
        old_broker = old.get("broker") if isinstance(old, Mapping) else None
        old_type = old_broker.get("type") if isinstance(old_broker, Mapping) else None
        if old_type is not None and old_type != config.broker_type:
            warnings.append(_item("broker_type", "Changing the broker type may disrupt queued/running jobs.",
                                  ["broker", "type"]))
    broker = config.broker
    if getattr(broker, "credentials", None) is not None:
        warnings.append(_item("inline_credentials", "broker.credentials stores access keys in the configuration; "
                              "prefer the AWS credential chain (environment, profile, instance role), or keep "
                              "this configuration secret", ["broker", "credentials"]))
    host_path = getattr(broker, "host_path", None)
    if host_path and not os.path.isdir(host_path):
        warnings.append(_item("host_path_missing", f"broker.host_path {host_path!r} does not exist on this machine "
                              "(or is not a directory)", ["broker", "host_path"]))
    if check_access:
        from .registry import broker_class

        try:
            cls = broker_class(config.broker_type)
            extra = cls.validation_warnings(config)
        except Exception as exc:  # validation must never raise
            log.debug("access check for %s failed: %s", config.broker_type, type(exc).__name__)
            extra = []
        warnings.extend(extra)
    return warnings


def validate_configuration(config: object, previous: object = None, *, check_access: bool = True) -> ValidationResult:
    """Validate a workspace configuration without raising.

    Args:
        config: A dict, JSON text, or a path to a JSON file. Anything else is reported as an error.
        previous: The configuration this one replaces, if any; a change of broker type gives the
            ``broker_type`` warning.
        check_access: Also try to reach the store (S3: the ``bucket_access`` warning). Set to False for a
            purely offline check.

    Returns:
        The result; ``result.to_dict()`` is the documented ``{is_valid, errors, warnings}`` response.
    """
    try:
        data, errors = check(config)
        if errors:
            return ValidationResult(errors=errors)
        loaded = WorkspaceConfiguration.from_valid_dict(data)
        return ValidationResult(warnings=_warnings(loaded, previous, check_access))
    except RecursionError:
        return ValidationResult(errors=[_item("too_deep", "the configuration is nested too deeply")])
    except Exception as exc:
        log.exception("unexpected error while validating a configuration")
        return ValidationResult(errors=[_item("internal_error", f"the configuration could not be validated "
                                                                f"({type(exc).__name__})")])
