"""The error edge of the userspace NFS client: which ``nfs_rs`` failures are transient, and what each becomes.

:func:`is_transient` is the one classification the retry policy consults; :func:`translate` turns what is left
into :mod:`brokers.errors`, through the errno map the host broker uses too (:mod:`brokers.core.errno_map`).
"""

from __future__ import annotations

from ....core.errno_map import TRANSIENT, kind_of, translate_os_error
from ....errors import BrokerError, FileNotFound

__all__ = ["MaybeDone", "is_transient", "translate"]

_TRANSIENT_TYPES = frozenset({"NfsRpcError", "NfsRetryableError", "NfsStateLostError", "NfsLostOpenStateError",
                              "NfsClientClosedError",
                              # "may have taken effect": every call the broker makes is safe to repeat (positional
                              # I/O, creating a temporary file, mkdir -p), or verified when a retry finds its
                              # target gone (remove, rename: see MaybeDone)
                              "NfsUncertainOutcomeError", "NfsOperationOutcomeError"})
_TRANSIENT_CODES = ("STALE", "DELAY", "JUKEBOX", "GRACE", "BADSESSION", "DEADSESSION", "BAD_STATEID",
                    "OLD_STATEID", "EXPIRED", "STALE_CLIENTID", "STALE_STATEID", "CONN_NOT_BOUND")
_TRANSIENT_ACTIONS = frozenset({"retry", "reopen", "remount"})


class MaybeDone(BrokerError):
    """A mutation failed transiently and its retry found the target already gone: it probably took effect."""


def is_transient(exc: BaseException) -> bool:
    """Return True for failures worth retrying on a fresh connection (timeouts, resets, stale handles)."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if not type(exc).__module__.startswith("nfs_rs"):
        return False
    if type(exc).__name__ in _TRANSIENT_TYPES:
        return True
    code = getattr(exc, "code_name", None) or ""
    if any(code.endswith(c) for c in _TRANSIENT_CODES):
        return True
    if getattr(getattr(exc, "recovery_action", None), "value", None) in _TRANSIENT_ACTIONS:
        return True
    if str(getattr(exc, "message", "")).startswith("RPC error"):  # transport trouble, e.g. a failed rebind
        return True
    return kind_of(exc) == TRANSIENT


def translate(exc: BaseException, rel: str, where: str | None = None) -> BrokerError:
    """Map an ``nfs_rs`` (or socket) error to a broker error: the one translation of the NFS client.

    ``where`` names the place in messages (``server:/export/rel``, see ``Endpoint.location``).
    """
    if isinstance(exc, BrokerError):
        return exc
    if (getattr(exc, "code_name", None) or "").endswith("ERR_SYMLINK"):
        return FileNotFound(rel, "a symbolic link on the way is not followed by the userspace NFS client")
    return translate_os_error(exc, rel, store="the NFS server", transient=is_transient(exc), where=where)
