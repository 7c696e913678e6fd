"""One map from operating-system errors to broker errors, shared by every filesystem-like backend.

Host and mounted NFS workspaces get :class:`OSError` from the kernel; the userspace NFS client raises subclasses
of the same built-ins (``FileNotFoundError``, ``PermissionError``...). Both are translated here: by ``errno``
where one is set, else by the built-in class.
"""

from __future__ import annotations

import errno

from ..errors import AccessDenied, BrokerError, FileNotFound, PathOutsideWorkspace, StorageUnavailable

__all__ = ["ERRNO_KINDS", "kind_of", "translate_os_error"]

NOT_FOUND, IS_DIRECTORY, DENIED, TRANSIENT, LINK_LOOP = "not_found", "is_directory", "denied", "transient", "loop"

ERRNO_KINDS: dict[int, str] = {
    errno.ENOENT: NOT_FOUND,
    errno.ENOTDIR: NOT_FOUND,
    errno.EISDIR: IS_DIRECTORY,
    errno.EACCES: DENIED,
    errno.EPERM: DENIED,
    errno.ESTALE: TRANSIENT,
    errno.EIO: TRANSIENT,
    errno.ETIMEDOUT: TRANSIENT,
    errno.ENOTCONN: TRANSIENT,
    errno.EHOSTDOWN: TRANSIENT,
    errno.ECONNRESET: TRANSIENT,
    errno.ECONNREFUSED: TRANSIENT,
    errno.ECONNABORTED: TRANSIENT,
    errno.EPIPE: TRANSIENT,
    errno.EAGAIN: TRANSIENT,
    errno.ELOOP: LINK_LOOP,
}
"""errno → kind of failure."""

_CLASS_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (FileNotFoundError, NOT_FOUND), (NotADirectoryError, NOT_FOUND), (IsADirectoryError, IS_DIRECTORY),
    (PermissionError, DENIED), (TimeoutError, TRANSIENT), (ConnectionError, TRANSIENT))


def kind_of(exc: BaseException) -> str | None:
    """Return the kind of an OS-level failure (``"not_found"``, ``"transient"``...), or None if unknown."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in ERRNO_KINDS:
        return ERRNO_KINDS[code]
    return next((kind for cls, kind in _CLASS_KINDS if isinstance(exc, cls)), None)


def translate_os_error(exc: BaseException, rel: str, *, store: str = "", transient: bool | None = None,
                       where: str | None = None) -> BrokerError:
    """Return the broker error for an OS-level failure on the workspace path ``rel``.

    Args:
        exc: The failure (an ``OSError``, or a client's exception deriving from one of its subclasses).
        rel: The workspace path concerned (``""``: the workspace root).
        store: Who refused, for messages (``"the NFS server"``); empty for the local filesystem.
        transient: The caller's own verdict on whether a failure the map does not place otherwise (unknown,
            or transient by its errno) is transient: a client may know better than its errno. None: the map
            judges. A missing file, a directory or a refusal stays what it is.
        where: How messages name the place (``server:/export/path`` for NFS); default ``rel``, ``/`` for the root.
    """
    if isinstance(exc, BrokerError):
        return exc
    kind = kind_of(exc)
    if transient is not None and kind in (None, TRANSIENT):
        kind = TRANSIENT if transient else None
    where = where or rel or "/"
    reason = getattr(exc, "strerror", None) or getattr(exc, "message", None) or str(exc) or type(exc).__name__
    by = f" by {store}" if store else ""
    if kind == NOT_FOUND:
        return FileNotFound(rel)
    if kind == IS_DIRECTORY:
        return FileNotFound(rel, "is a directory, not a file")
    if kind == DENIED:
        return AccessDenied(f"{where}: permission denied{by}")
    if kind == TRANSIENT:
        return StorageUnavailable(f"{where}: {store or 'the filesystem'} kept failing: {reason}")
    if kind == LINK_LOOP:
        return PathOutsideWorkspace(rel, "too many levels of symbolic links")
    return BrokerError(f"{where}: {reason}")
