"""Workspace path confinement: one normaliser used by every broker.

Workspace paths are relative POSIX strings such as ``"in/a.csv"``. :func:`normalize` turns a user-supplied
path into its canonical form or raises :class:`~brokers.errors.PathOutsideWorkspace`; :func:`resolve_local`
additionally confines a path on a local filesystem, following symlinks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import unicodedata

from .errors import PathOutsideWorkspace

__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "join_key", "normalize", "open_beneath", "resolve_local"]

MAX_NAME_BYTES = 255
"""Longest single path component, in UTF-8 bytes (the common filesystem limit)."""
MAX_PATH_BYTES = 1024
"""Longest workspace path, in UTF-8 bytes (the S3 key limit)."""

_SLASH_LOOKALIKES = frozenset("\u2215\u2044\uff0f\u29f8\u2571")
_DOT_LOOKALIKES = frozenset("\u2024\uff0e\u3002\ufe52")


def normalize(path: object, *, allow_root: bool = False) -> str:
    """Return the canonical relative form of a workspace path.

    ``.`` components are dropped and ``a/../b`` becomes ``b``; anything that would climb above the workspace
    root is refused.

    Args:
        path: The path as given by the user (``str`` or ``os.PathLike[str]``).
        allow_root: Accept the workspace root itself (``""``, ``"."``), as listing prefixes do.

    Returns:
        The normalised path, without leading or trailing slashes (``""`` for the root).

    Raises:
        PathOutsideWorkspace: The path is not a string, is absolute, escapes with ``..``, holds a NUL byte, a
            backslash, a control character, a lone surrogate, an empty component, a Unicode look-alike of ``/``
            or ``.``, or is too long.
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise PathOutsideWorkspace(path, f"a workspace path must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise PathOutsideWorkspace(path, "NUL bytes are not allowed")
    if "\\" in path:
        raise PathOutsideWorkspace(path, "backslashes are not allowed; use '/'")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise PathOutsideWorkspace(path, "control characters are not allowed")
    if any("\ud800" <= c <= "\udfff" for c in path):
        # Lone surrogates (and undecodable bytes smuggled in as surrogateescape) are not Unicode text: an S3 key
        # or an NFS name cannot hold them, and encoding them for the local filesystem would fail or differ.
        raise PathOutsideWorkspace(path, "lone surrogates are not allowed (a path must be valid Unicode)")
    if any(c in _SLASH_LOOKALIKES or c in _DOT_LOOKALIKES for c in path):
        raise PathOutsideWorkspace(path, "Unicode look-alikes of '/' or '.' are not allowed")
    folded = unicodedata.normalize("NFKC", path).split("/")
    if folded != path.split("/") and (
        len(folded) != path.count("/") + 1 or any(n in (".", "..") for n in folded)
    ):
        raise PathOutsideWorkspace(path, "Unicode look-alikes of '/' or '.' are not allowed")
    if path.startswith("/"):
        raise PathOutsideWorkspace(path, "absolute paths are not allowed; give a path relative to the workspace")
    stripped = path[:-1] if path.endswith("/") and allow_root else path
    parts: list[str] = []
    for name in stripped.split("/") if stripped else []:
        if name == "":
            raise PathOutsideWorkspace(path, "empty path components ('//' or a trailing '/') are not allowed")
        if name == ".":
            continue
        if name == "..":
            if not parts:
                raise PathOutsideWorkspace(path, "'..' would leave the workspace")
            parts.pop()
            continue
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise PathOutsideWorkspace(path, f"a path component is longer than {MAX_NAME_BYTES} bytes")
        parts.append(name)
    result = "/".join(parts)
    if len(result.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise PathOutsideWorkspace(path, f"the path is longer than {MAX_PATH_BYTES} bytes")
    if not result and not allow_root:
        raise PathOutsideWorkspace(path, "the path names the workspace root, not a file")
    return result


def join_key(prefix: str, rel: str) -> str:
    """Join a normalised workspace path onto a key prefix (``"" + "a"``, ``"p/" + "a"``)."""
    if not prefix:
        return rel
    return prefix.rstrip("/") + "/" + rel if rel else prefix.rstrip("/") + "/"


def resolve_local(root: str, rel: str) -> str:
    """Map a normalised workspace path onto a local filesystem and confine it, symlinks included.

    The path is resolved with :func:`os.path.realpath` (every symlink on the way, the last one included); the
    result must lie inside ``root``. The unresolved path is returned, so deleting or renaming a symlink acts
    on the link itself, while opening it reaches a target that was just checked to be inside.

    Args:
        root: The resolved (``realpath``) workspace root.
        rel: A path already passed through :func:`normalize`.

    Returns:
        The absolute local path to operate on.

    Raises:
        PathOutsideWorkspace: A symbolic link leads outside the workspace.
    """
    target = os.path.join(root, rel) if rel else root
    real = os.path.realpath(target)
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        raise PathOutsideWorkspace(rel, "a symbolic link leads outside the workspace")
    return target


MAX_SYMLINKS = 40
"""Most symbolic links followed while resolving one path (the kernel's own limit)."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_beneath(root: str, rel: str, *, follow_last: bool = True, create_dirs: bool = False,
                 follow_links: bool = True) -> tuple[int, str]:
    """Resolve a workspace path one component at a time with directory descriptors, never leaving ``root``.

    This closes the window between checking a path and using it (a directory swapped for a symbolic link in
    between): every directory on the way is opened with ``O_NOFOLLOW`` relative to the descriptor of its
    parent, and a symbolic link met on the way is read (``readlinkat``) and resolved by this function, inside
    the descriptors it holds, never by the kernel. ``..`` climbs the descriptors held, so it cannot climb above
    ``root``. Callers then operate with ``dir_fd=`` on the returned directory and a name that is not followed
    (``O_NOFOLLOW``, ``follow_symlinks=False``, ``rename``/``unlink`` which never follow).

    Args:
        root: The resolved (``realpath``) workspace root.
        rel: A path already passed through :func:`normalize` (``""``: the root).
        follow_last: Resolve a symbolic link in the last component too (for reads); otherwise the last name is
            returned as is (writes replace a link, deletes remove it).
        create_dirs: Create missing directories on the way (not the last component).
        follow_links: Follow symbolic links at all; False: any link on the way (the last component included,
            unless ``follow_last`` is False) raises :class:`PathOutsideWorkspace` (S3 mounts, whose keys are
            never links).

    Returns:
        ``(dir_fd, name)``: an open descriptor of the directory holding the target (the caller closes it) and
        the target's name in it; ``name`` is ``""`` when the path resolves to a directory (``dir_fd`` is then
        that directory).

    Raises:
        PathOutsideWorkspace: A symbolic link leads outside the workspace, or there are too many of them.
        OSError: A component is missing (``ENOENT``) or is not a directory (``ENOTDIR``).
    """
    stack = [os.open(root, _DIR_FLAGS)]
    todo = list(reversed(rel.split("/"))) if rel else []
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) == 1:
                    raise PathOutsideWorkspace(rel, "a symbolic link leads outside the workspace")
                os.close(stack.pop())
                continue
            last = not todo
            if last and not follow_last:
                return stack.pop(), name
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno == errno.ENOENT and create_dirs and not last:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o777, dir_fd=stack[-1])
                    todo.append(name)
                    continue
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                try:
                    target = os.readlink(name, dir_fd=stack[-1])
                except OSError:  # not a link: a file (fine as the last component) or gone meanwhile
                    if last and exc.errno == errno.ENOTDIR:
                        return stack.pop(), name
                    raise exc from None
                if not follow_links:
                    raise PathOutsideWorkspace(rel, "a symbolic link is on the way") from None
                links += 1
                if links > MAX_SYMLINKS:
                    raise PathOutsideWorkspace(rel, "too many levels of symbolic links") from None
                if target.startswith("/"):
                    inside = target.rstrip("/") == root.rstrip("/") or target.startswith(root.rstrip("/") + "/")
                    if not inside:
                        raise PathOutsideWorkspace(rel, "a symbolic link leads outside the workspace") from None
                    while len(stack) > 1:
                        os.close(stack.pop())
                    target = target[len(root.rstrip("/")):]
                todo.extend(reversed(target.split("/")))
                continue
            stack.append(fd)
        return stack.pop(), ""
    finally:
        for fd in stack:
            os.close(fd)
