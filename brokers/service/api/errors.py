"""Every refusal as a JSON body naming the field: ``{"detail": ..., "errors": [{name, description, field, location}]}``.

FastAPI's 422 for a malformed request becomes a 400; a body that is not JSON is named as such, with where it
breaks. Bodies never echo what the client sent (it may be a secret).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..problems import ApiError

__all__ = ["ApiError", "error_response", "install_handlers", "read_json"]

log = logging.getLogger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_NAMES = {"missing": "missing_field", "extra_forbidden": "unknown_field", "json_invalid": "invalid_json",
          "bool_type": "wrong_type", "string_type": "wrong_type", "int_type": "wrong_type",
          "int_parsing": "wrong_type", "dict_type": "wrong_type", "model_type": "wrong_type",
          "list_type": "wrong_type", "int_from_float": "wrong_type"}
_WORDS = {"bool_type": "must be true or false", "string_type": "must be a string",
          "int_type": "must be a whole number", "int_parsing": "must be a whole number",
          "int_from_float": "must be a whole number", "dict_type": "must be a JSON object",
          "model_type": "must be a JSON object", "list_type": "must be a list", "missing": "is required",
          "extra_forbidden": "is not a known field", "json_invalid": "is not valid JSON",
          "string_too_short": "must not be empty", "string_pattern_mismatch": "has an invalid format"}


def read_json(raw: bytes) -> tuple[Any, str | None]:
    """Parse a request body: ``(data, None)``, or ``(None, why)`` saying it is not JSON and where it breaks.

    ``why`` reads ``the body is not valid JSON: Expecting value: line 1 column 10 (char 9)`` (no input echoed).
    """
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as exc:
        return None, f"the body is not valid JSON: {exc}"
    except UnicodeDecodeError as exc:
        return None, f"the body is not valid JSON: it is not UTF-8 text (byte {exc.start})"
    except RecursionError:
        return None, "the body is not valid JSON: it is nested too deeply"


def _body_problem(detail: str) -> list[dict[str, str]]:
    return [{"name": "invalid_json", "description": detail, "field": "body", "location": "body"}]


async def _json_problem(request: Request) -> str | None:
    """Why the JSON body of ``request`` does not parse (None: it does, or it is not a JSON request)."""
    if "json" not in request.headers.get("content-type", ""):
        return None
    return read_json(await request.body())[1]


def error_response(status: int, detail: str, errors: Iterable[dict[str, str]] = (),
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """Return the JSON error body."""
    return JSONResponse({"detail": detail, "errors": list(errors)}, status_code=status, headers=headers)


def _field(loc: Sequence[Any]) -> tuple[str, str]:
    parts = list(loc)
    location = str(parts.pop(0)) if parts and parts[0] in _LOCATIONS else "body"
    if location == "query":  # a repeated parameter: name the parameter, not its position
        parts = [p for p in parts if not isinstance(p, int)]
    field = ".".join(str(p) for p in parts)
    return field, location


def validation_items(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Translate pydantic/FastAPI error dicts into error items, without the offending input."""
    items: list[dict[str, str]] = []
    for error in errors:
        field, location = _field(error.get("loc", ()))
        kind = str(error.get("type", ""))
        words = _WORDS.get(kind)
        if words is None:
            message = str(error.get("msg", "is not valid"))
            words = message.removeprefix("Value error, ")
            words = words[:1].lower() + words[1:]
        if kind == "json_invalid":  # pydantic puts the character position where the field goes
            field, location, words = "body", "body", f"is not valid JSON (char {field})"
        if location == "body" and not field:
            field = "body"
            words = "must be a JSON object" if kind in ("model_attributes_type", "dict_type") else words
        label = field if location != "header" else f"header {field}"
        items.append({"name": _NAMES.get(kind, "invalid_value"), "description": f"{label} {words}",
                      "field": field, "location": location})
    return items


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the JSON body."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            problem = await _json_problem(request)
            if problem is not None:
                return error_response(400, problem, _body_problem(problem))
        items = validation_items(exc.errors())
        detail = "; ".join(i["description"] for i in items) or "the request is not valid"
        return error_response(400, detail, items)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = await _json_problem(request) if exc.status_code == 400 else None
        if problem is not None:  # FastAPI's "error parsing the body" (a body that is not UTF-8)
            return error_response(400, problem, _body_problem(problem))
        names = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        item = {"name": names.get(exc.status_code, "http_error"), "description": detail, "field": "",
                "location": "path"}
        return error_response(exc.status_code, detail, [item], dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error handling a request: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal server error")
