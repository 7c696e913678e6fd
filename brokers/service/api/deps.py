"""What the request handlers share: settings, database sessions, secrets, the usage refresher, access checks."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session, sessionmaker

from ..security import SecretBox, TokenChecker
from ..settings import Settings
from ..usage import UsageRefresher
from .errors import ApiError

__all__ = ["TOKEN_HEADER", "ServiceState", "get_state", "require_read", "require_write"]

TOKEN_HEADER = "X-Access-Token"  # noqa: S105 - a header name, not a secret

_token = APIKeyHeader(name=TOKEN_HEADER, auto_error=False, scheme_name="AccessToken",
                      description="An access token configured with `brokers serve --token` "
                                  "(or BROKERS_SERVICE_TOKENS).")


@dataclass
class ServiceState:
    """The service's shared objects, kept on ``app.state.service``."""

    settings: Settings
    sessions: sessionmaker[Session]
    box: SecretBox
    refresher: UsageRefresher
    tokens: TokenChecker


def get_state(request: Request) -> ServiceState:
    """Return the state of the app serving ``request``."""
    state: ServiceState = request.app.state.service
    return state


def _authorize(state: ServiceState, token: str | None, action: str) -> None:
    if not state.tokens.configured:
        raise ApiError.one(403, "read_only", f"{action} needs an access token and none is configured on this "
                           "service (start it with --token or BROKERS_SERVICE_TOKENS)", TOKEN_HEADER, "header")
    if token is None:
        raise ApiError.one(401, "missing_token", f"{action} needs an access token in the {TOKEN_HEADER} header",
                           TOKEN_HEADER, "header")
    if not state.tokens.check(token):
        raise ApiError.one(403, "invalid_token", f"the {TOKEN_HEADER} header does not hold a valid access token",
                           TOKEN_HEADER, "header")


def require_read(request: Request, token: str | None = Security(_token)) -> None:
    """Let reads through when public, else check the token."""
    state = get_state(request)
    if not state.settings.public_reads:
        _authorize(state, token, "reading")


def require_write(request: Request, token: str | None = Security(_token)) -> None:
    """Check the token of a write."""
    _authorize(get_state(request), token, "changing workspaces")
