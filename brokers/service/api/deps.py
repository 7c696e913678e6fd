"""What the request handlers share: settings, database sessions, secrets, the job system, access checks."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import User
from ..jobs.system import JobSystem
from ..security import SecretBox, TokenChecker
from ..settings import Settings
from ..store.users import Actor, actor_for_token
from .errors import ApiError

__all__ = ["TOKEN_HEADER", "ServiceState", "get_state", "require_read", "require_write"]

TOKEN_HEADER = "X-Access-Token"  # noqa: S105 - a header name, not a secret

_token = APIKeyHeader(name=TOKEN_HEADER, auto_error=False, scheme_name="AccessToken",
                      description="A user's token (`brokers users add NAME`), or a service token configured "
                                  "with `brokers serve --token` (or BROKERS_SERVICE_TOKENS), which acts as the "
                                  "built-in admin user `service`.")


@dataclass
class ServiceState:
    """The service's shared objects, kept on ``app.state.service``."""

    settings: Settings
    sessions: sessionmaker[Session]
    box: SecretBox
    jobs: JobSystem
    tokens: TokenChecker
    service_actor: Actor
    """The built-in admin user the service tokens act as."""


def get_state(request: Request) -> ServiceState:
    """Return the state of the app serving ``request``."""
    state: ServiceState = request.app.state.service
    return state


def _has_users(state: ServiceState) -> bool:
    with state.sessions() as session:
        return session.scalar(select(User.id).where(User.token_digest.is_not(None)).limit(1)) is not None


def _authorize(state: ServiceState, token: str | None, action: str) -> Actor:
    """Return who presents ``token``: a service token is the built-in admin, a user token its user."""
    if token is not None:
        if state.tokens.check(token):
            return state.service_actor
        with state.sessions() as session:
            actor = actor_for_token(session, token)
        if actor is not None:
            return actor
    if not state.tokens.configured and not _has_users(state):
        raise ApiError.one(403, "read_only", f"{action} needs an access token and none is configured on this "
                           "service (start it with --token or BROKERS_SERVICE_TOKENS, or add a user with "
                           "brokers users add)", TOKEN_HEADER, "header")
    if token is not None:
        raise ApiError.one(403, "invalid_token", f"the {TOKEN_HEADER} header does not hold a valid access token",
                           TOKEN_HEADER, "header")
    raise ApiError.one(401, "missing_token", f"{action} needs an access token in the {TOKEN_HEADER} header",
                       TOKEN_HEADER, "header")


def require_read(request: Request, token: str | None = Security(_token)) -> Actor | None:
    """Let reads through when public (None: anonymous), else check the token."""
    state = get_state(request)
    if state.settings.public_reads and token is None:
        return None
    return _authorize(state, token, "reading")


def require_write(request: Request, token: str | None = Security(_token)) -> Actor:
    """Check the token of a write; return who makes it."""
    return _authorize(get_state(request), token, "changing workspaces")
