"""The OpenAPI document, with the workspace configuration's own JSON Schema in place of "any object".

The configuration schema shipped with ``brokers`` (JSON Schema 2020-12, which OpenAPI 3.1 uses) becomes the
component ``WorkspaceConfiguration``; its ``$defs`` become components of their own.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from brokers.config.schema import schema as configuration_schema

__all__ = ["install_openapi"]

_PREFIX = "WorkspaceConfiguration_"
_REF = {"$ref": "#/components/schemas/WorkspaceConfiguration"}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("#/components/schemas/" + _PREFIX + v.removeprefix("#/$defs/")
                    if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/") else _rewrite_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _configuration_components() -> dict[str, Any]:
    source = copy.deepcopy(configuration_schema())
    defs = source.pop("$defs", {})
    for key in ("$schema", "$id"):
        source.pop(key, None)
    components = {"WorkspaceConfiguration": _rewrite_refs(source)}
    components.update({_PREFIX + name: _rewrite_refs(value) for name, value in defs.items()})
    return components


def _point_configuration_at_component(node: Any) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and isinstance(props.get("configuration"), dict):
            original = props["configuration"]
            described = original.get("description")
            nullable = any(option.get("type") == "null" for option in original.get("anyOf", []))
            schema: dict[str, Any] = {"anyOf": [_REF, {"type": "null"}]} if nullable else dict(_REF)
            props["configuration"] = {**schema, **({"description": described} if described else {})}
        for value in node.values():
            _point_configuration_at_component(value)
    elif isinstance(node, list):
        for value in node:
            _point_configuration_at_component(value)


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe ``configuration`` with the configuration schema (built once, cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            _point_configuration_at_component(document)
            document.setdefault("components", {}).setdefault("schemas", {}).update(_configuration_components())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
