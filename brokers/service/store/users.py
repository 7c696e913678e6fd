"""Users and their tokens: tokens are random, shown once, and stored as their SHA-256 digest only.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is enough to make the stored digest
useless to a reader of the database; looking a token up by its digest takes one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import SERVICE_USER, USER_NAME_LENGTH, User, utcnow
from ..problems import ApiError

__all__ = ["Actor", "actor_for_token", "add_user", "digest", "ensure_service_user", "list_users", "revoke_user"]

TOKEN_PREFIX = "brk_"  # noqa: S105 - a marker that makes a leaked token recognisable, not a secret


@dataclass(frozen=True)
class Actor:
    """Who makes a request: a user id, a name, and whether they may change every workspace."""

    id: int
    name: str
    is_admin: bool

    def may_change(self, owner_id: int | None) -> bool:
        """True if this actor may change a workspace owned by ``owner_id`` (its owner, or an admin)."""
        return self.is_admin or owner_id == self.id


def digest(token: str) -> str:
    """Return the hex SHA-256 of a token, as stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def ensure_service_user(session: Session) -> Actor:
    """Return the built-in admin ``service`` user (the actor of the service's own tokens), creating it if needed."""
    user = session.scalar(select(User).where(User.name == SERVICE_USER))
    if user is None:
        user = User(name=SERVICE_USER, is_admin=True, created=utcnow())
        session.add(user)
        session.flush()
    return Actor(user.id, user.name, True)


def actor_for_token(session: Session, token: str) -> Actor | None:
    """Return the user a token belongs to (None: no such token, or the user was revoked)."""
    user = session.scalar(select(User).where(User.token_digest == digest(token), User.revoked.is_(None)))
    return None if user is None else Actor(user.id, user.name, user.is_admin)


def _check_name(name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > USER_NAME_LENGTH or any(not ch.isprintable() for ch in clean):
        raise ApiError.one(400, "invalid_value", f"a user name is 1-{USER_NAME_LENGTH} printable characters",
                           "name")
    if clean == SERVICE_USER:
        raise ApiError.one(409, "name_taken", f"{SERVICE_USER!r} is the service's built-in user", "name")
    return clean


def add_user(session: Session, name: str, *, admin: bool = False) -> tuple[User, str]:
    """Create a user; return it and its token (the only time the token is known).

    Raises:
        ApiError: 400 for a bad name, 409 if the name is taken.
    """
    clean = _check_name(name)
    if session.scalar(select(User.id).where(User.name == clean)) is not None:
        raise ApiError.one(409, "name_taken", f"there is already a user named {clean!r}", "name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(name=clean, is_admin=admin, token_digest=digest(token), created=utcnow())
    session.add(user)
    session.flush()
    return user, token


def list_users(session: Session) -> list[User]:
    """Return every user, the built-in one included, by id."""
    return list(session.scalars(select(User).order_by(User.id)))


def revoke_user(session: Session, name: str) -> User:
    """Revoke a user's token: it stops working at once; the user stays as the author of what it did.

    Raises:
        ApiError: 404 if there is no such user.
    """
    user = session.scalar(select(User).where(User.name == name.strip()))
    if user is None or user.name == SERVICE_USER:
        raise ApiError.one(404, "not_found", f"there is no user named {name.strip()[:100]!r}", "name")
    if user.revoked is None:
        user.revoked = utcnow()
    user.token_digest = None
    return user
