"""Validation items in words a person understands: jsonschema errors turned into ``{name, description, path}``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

__all__ = ["describe_error", "item", "json_type"]

_JSON_TYPES = {"object": "an object", "array": "a list", "string": "a string", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}


def item(name: str, description: str, path: tuple[Any, ...] | list[Any] = ()) -> dict[str, str]:
    """Return one validation item; ``path`` (a sequence of keys) becomes a JSON pointer."""
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return {"name": name, "description": description, "path": pointer}


def _label(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the configuration"


def json_type(value: Any) -> str:
    """Name the JSON type of a value in words (``a whole number``)."""
    for name, check in (("null", value is None), ("boolean", isinstance(value, bool)),
                        ("integer", isinstance(value, int)), ("number", isinstance(value, float)),
                        ("string", isinstance(value, str)), ("array", isinstance(value, list))):
        if check:
            return _JSON_TYPES[name]
    return _JSON_TYPES["object"] if isinstance(value, Mapping) else type(value).__name__


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else json_type(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _broker_kind(instance: Any) -> str:
    return f"an {instance['type']} broker" if instance.get("type") in ("s3", "nfs") else "a host broker"


def describe_error(error: ValidationError) -> Iterator[dict[str, str]]:
    """Yield the validation items one jsonschema error stands for (``required`` may name several fields)."""
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
                yield item("missing_field", f"{_label([*path, name])} is required{where}", [*path, name])
    elif kind == "additionalProperties":
        known = set(sch.get("properties", {}))
        kind_text = f"of {_broker_kind(instance)}" if path == ["broker"] else f"of {label}"
        for name in instance:
            if name not in known:
                yield item("unknown_field", f"{_label([*path, name])} is not a known field {kind_text}"
                            f" (known: {', '.join(sorted(known))})", [*path, name])
    elif kind == "type":
        expected = value if isinstance(value, list) else [value]
        words = " or ".join(_JSON_TYPES.get(str(t), str(t)) for t in expected)
        yield item("wrong_type", f"{label} must be {words}, not {json_type(instance)}", path)
    elif kind in ("enum", "const"):
        allowed = value if kind == "enum" else [value]
        choices = ", ".join(json.dumps(a) for a in allowed)
        got = "" if secret else f" (got {_shown(instance)})"
        if path == ["version"]:
            yield item("unsupported_version", f"version must be one of {choices}{got}", path)
        elif path == ["broker", "type"]:
            yield item("unknown_broker_type", f"broker.type must be one of {choices}{got}", path)
        else:
            yield item("invalid_value", f"{label} must be one of {choices}{got}", path)
    else:
        message = sch.get("x-message")
        if message is None:
            message = {"minLength": "must not be empty", "maxLength": f"is too long (at most {sch.get('maxLength')})",
                       "minimum": f"must be at least {sch.get('minimum')}",
                       "maximum": f"must be at most {sch.get('maximum')}"}.get(str(kind), "is not valid")
        if kind == "maxLength" and "x-message" in sch:
            message = f"is too long (at most {sch.get('maxLength')} characters)"
        yield item("invalid_value", f"{label} {message}", path)
