"""Connections of the userspace NFS client to one export (``nfs_rs``), with the retry policy and fork safety.

Every call goes through :meth:`ConnectionPool.run`: failures the client's table calls transient
(:func:`~brokers.backends.nfs.direct.errors.is_transient`) are tried again on a fresh connection under the one
:class:`~brokers.core.retry.RetryPolicy`, and what is left is translated by that table.

Connections are reused: a pool holds a few ``nfs_rs.Client`` objects, each behind its own lock (the client is
not documented as thread-safe, and concurrent OPEN/CLOSE of one file through one NFSv4 client loses state), so
threads use different connections in parallel. After a fork the child connects anew; the clients and files it
inherited are never used and never freed (their I/O threads did not survive the fork, and freeing one would
wait for them forever), see :func:`_after_fork_in_child`; and a fork waits until no thread is inside an nfs-rs
call, so the child inherits no native lock held (:class:`_ForkGate`).

Where the mount is rooted: NFSv3 mounts ``nfs_path`` itself (or, if that directory does not exist yet, the
nearest existing ancestor). NFSv4.1 mounts the parent of ``nfs_path`` and addresses the workspace by name,
because nfs-rs cannot list the root directory of an NFSv4 mount (``NFS4ERR_BADNAME``).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import posixpath
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ....config.endpoints import url_host
from ....core.retry import RetryPolicy
from ....errors import BrokerError, MissingDependency, StorageUnavailable
from .errors import MaybeDone, is_transient, translate

if TYPE_CHECKING:
    import nfs_rs

__all__ = ["DEFAULT_VERSION", "READ_CHUNK", "URL_SAFE", "WRITE_CHUNK", "Connection", "ConnectionPool", "Endpoint",
           "keep_across_fork", "load_nfs_rs"]

T = TypeVar("T")

log = logging.getLogger("brokers.nfs")

URL_SAFE = re.compile(r"^[A-Za-z0-9._~/-]+$")
"""Paths nfs-rs takes in a URL as they are (``?``, ``#`` or ``%`` would read as syntax)."""
READ_CHUNK = 16 * 1024 * 1024
"""Largest read handed to nfs-rs in one call (it splits it further into up to eight parallel RPCs)."""
WRITE_CHUNK = 64 * 1024 * 1024
"""Largest write handed to nfs-rs in one call: each call ends with a COMMIT, so fewer, larger calls are faster
(64 MiB stays well inside the RPC deadline at any plausible speed)."""

DEFAULT_VERSION = "3"
"""Protocol used when ``nfs_version`` is not configured: NFSv3 needs no client state and is served everywhere."""

_NFS_OBJECTS: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every ``nfs_rs`` client and open file of this process, for the fork hook below (the one module-level state:
fork safety needs it). Not only those a pool still holds: one a retry dropped may wait in a reference cycle
(its failure's traceback) until the garbage collector runs, perhaps in a forked child."""


def keep_across_fork(obj: T) -> T:
    """Register an ``nfs_rs`` client or file, so that a forked child never frees its inherited copy; return it."""
    _NFS_OBJECTS.add(obj)
    return obj


def _after_fork_in_child() -> None:
    """Make every ``nfs_rs`` object inherited from the parent immortal in a forked child.

    Freeing one (at any time, including interpreter exit) waits forever for I/O threads that exist only in
    the parent; an extra reference that is never dropped keeps them from being freed. The child connects anew.
    """
    for obj in list(_NFS_OBJECTS):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


class _ForkGate:
    """Lets ``fork`` wait until no thread is inside an ``nfs_rs`` call, and keeps new calls out while it forks.

    nfs-rs holds native locks during a call; a child forked at that instant inherits them held, and its own
    calls then wait forever. Forking at a quiet moment avoids that. A call that does not return within
    :data:`FORK_WAIT` seconds (a hung server) does not hold the fork up for longer.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._forking = False
        self._depth = threading.local()

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Hold the gate open for one native call (re-entrant: an operation may nest calls)."""
        depth = getattr(self._depth, "n", 0)
        if depth:
            self._depth.n = depth + 1
            try:
                yield
            finally:
                self._depth.n = depth
            return
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._active += 1
        self._depth.n = 1
        try:
            yield
        finally:
            self._depth.n = 0
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    def before_fork(self) -> None:
        self._cond.acquire()  # held across the fork: no thread starts a call meanwhile
        self._forking = True
        if not self._cond.wait_for(lambda: not self._active, timeout=FORK_WAIT):
            log.warning("forking while an NFS call is still running (it did not end within %s s)", FORK_WAIT)

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()

    def after_fork_in_child(self) -> None:
        self._reset()  # the parent's condition is held, and its waiters are gone


FORK_WAIT = 10.0
"""Longest wait of a ``fork`` for the NFS calls in progress to end."""

_GATE = _ForkGate()
native_call = _GATE.call
"""``with native_call(): ...`` around every call into ``nfs_rs`` (see :class:`_ForkGate`)."""


def _child_hooks() -> None:
    _GATE.after_fork_in_child()
    _after_fork_in_child()


os.register_at_fork(before=_GATE.before_fork, after_in_parent=_GATE.after_fork_in_parent,
                    after_in_child=_child_hooks)


def load_nfs_rs() -> Any:
    """Import ``nfs_rs`` (the optional ``nfs`` extra).

    Raises:
        MissingDependency: nfs-rs is not installed.
    """
    try:
        import nfs_rs
    except ImportError as exc:
        raise MissingDependency(
            "an NFS workspace that is not mounted on this machine needs the userspace NFS client nfs-rs: "
            "pip install 'brokers[nfs]' (or set host_path to where the export is mounted)"
        ) from exc
    return nfs_rs


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: server, export path, protocol version and ports."""

    server: str
    export: str
    version: str = DEFAULT_VERSION
    nfs_port: int | None = None
    mount_port: int | None = None
    connect_timeout: float = 10.0
    operation_timeout: float = 60.0
    """Deadline of one NFS call; transfers are cut into :data:`READ_CHUNK`/:data:`WRITE_CHUNK` pieces."""
    readdir_buffer: int | None = None
    """Directory reply size limit in bytes (None: from the server's limits); small values mean more pages."""

    def url(self, path: str) -> str:
        """The ``nfs://`` URL of ``path`` on the server (IPv6 in brackets)."""
        return f"nfs://{url_host(self.server)}{path}"

    def location(self, rel: str = "") -> str:
        """How messages name a workspace path: ``server:/export/rel`` (the workspace itself for ``""``)."""
        host, export = url_host(self.server), self.export.rstrip("/")
        return f"{host}:{export}/{rel}" if rel else f"{host}:{export or '/'}"

    def candidates(self) -> list[tuple[str, str]]:
        """Mount roots to try, best first, each with the workspace's path below it.

        NFSv3 starts at the workspace directory itself, NFSv4.1 at its parent (nfs-rs cannot list the root of
        an NFSv4 mount); both walk up through the ancestors, so a workspace directory that does not exist yet
        (or whose name cannot be put in a URL) is reached from an existing ancestor. NFSv4.1 climbs to the
        pseudo root ``/`` only for a top-level export. Roots with characters outside ``[A-Za-z0-9._~/-]``
        are skipped: nfs-rs would read ``?``, ``#`` or ``%`` in a URL as syntax.
        """
        export = self.export.rstrip("/") or "/"
        out: list[tuple[str, str]] = []
        root, rest = export, ""
        while True:
            out.append((root, rest))
            if root == "/":
                break
            root, name = posixpath.split(root)
            rest = f"{name}/{rest}".rstrip("/")
        if self.version != "3":
            out = out[1:] or out  # never the workspace directory itself
            if len(out) > 1:
                out = [c for c in out if c[0] != "/"]
        return [c for c in out if URL_SAFE.match(c[0])]

    def connect(self, path: str) -> nfs_rs.Client:
        """Open one client mounted at ``path`` (raw ``nfs_rs`` errors)."""
        module = load_nfs_rs()
        with native_call():
            client: nfs_rs.Client = module.Client.connect(
                self.url(path), versions=[self.version], nfs_port=self.nfs_port, mount_port=self.mount_port,
                connect_timeout=self.connect_timeout, operation_timeout=self.operation_timeout,
                readdir_buffer=self.readdir_buffer)
            return keep_across_fork(client)


class Connection:
    """One ``nfs_rs.Client`` and the lock that serialises its use."""

    def __init__(self, client: nfs_rs.Client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.broken = False

    def close(self, wait: bool = True) -> None:
        """Close the client, ignoring errors; ``wait=False`` closes in the background.

        Closing a connection the server has reset can take until the RPC deadline (nfs-rs waits for the
        dead transport), which must not stall the operation being retried.
        """
        def close() -> None:
            with contextlib.suppress(Exception), native_call():  # a broken connection may fail to close
                self.client.close()

        if wait:
            close()
        else:
            threading.Thread(target=close, name="brokers-nfs-close", daemon=True).start()


class ConnectionPool:
    """Up to ``size`` connections to one export, rebuilt after errors and after ``fork``.

    Args:
        endpoint: The server and export.
        size: Most connections kept open (threads beyond that share them, one at a time).
        retry: Attempts and backoff for transient failures (then :class:`StorageUnavailable`).
    """

    def __init__(self, endpoint: Endpoint, size: int = 4, retry: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.size = max(size, 1)
        self.retry = retry or RetryPolicy()
        self.root: str | None = None
        """Mount root on the server, fixed by the first connection."""
        self.base = ""
        """The workspace's path below the mount root (``""``: the mount root itself)."""
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._guard = threading.Lock()
        self._conns: list[Connection] = []
        self._opening = 0
        self._turn = itertools.count()

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # The parent's clients are unusable here (their I/O threads did not survive the fork), and freeing
            # one blocks forever: _after_fork_in_child made them immortal; forget them and connect anew.
            self._reset()

    def remote(self, rel: str) -> str:
        """The path to give ``nfs_rs`` for a workspace path (relative to the mount root; connects first)."""
        if self.root is None:
            self.run(lambda client: None, rel)  # the first connection fixes the mount root and base
        if not self.base:
            return rel
        return f"{self.base}/{rel}" if rel else self.base

    def _open_new(self) -> Connection:
        if self.root is not None:
            return Connection(self.endpoint.connect(self.root))
        last: BaseException | None = None
        for root, base in self.endpoint.candidates():
            try:
                client = self.endpoint.connect(root)
            except Exception as exc:
                if is_transient(exc):
                    raise
                last = exc
                continue
            if root == "/" and base and self.endpoint.version != "3":
                top = base.split("/")[0]
                with native_call():
                    there = client.exists(top)
                if not there:  # the NFSv4 pseudo root lists the exports: this one is not there
                    Connection(client).close()
                    last = FileNotFoundError(f"no export {self.endpoint.export} in the server's pseudo root")
                    continue
            self.root, self.base = root, base
            return Connection(client)
        detail = getattr(last, "message", None) or str(last) if last else "no mountable directory"
        raise BrokerError(f"cannot mount {self.endpoint.server}:{self.endpoint.export} "
                          f"(NFSv{self.endpoint.version}): {detail}") from last

    def acquire(self) -> Connection:
        """Take a connection (locked): an idle one, a new one while below ``size``, else wait for one."""
        self._check_fork()
        with self._guard:
            conns = [c for c in self._conns if not c.broken]
            self._conns = conns
            for conn in conns:
                if conn.lock.acquire(blocking=False):
                    return conn
            grow = len(conns) + self._opening < self.size or not conns
            if grow:
                self._opening += 1  # reserve the slot before connecting outside the guard
            chosen = None if grow else conns[next(self._turn) % len(conns)]
        if chosen is None:
            try:
                conn = self._open_new()
            finally:
                with self._guard:
                    self._opening -= 1
            conn.lock.acquire()
            with self._guard:
                self._conns.append(conn)
            return conn
        chosen.lock.acquire()
        return chosen

    def release(self, conn: Connection) -> None:
        """Give a connection back."""
        conn.lock.release()

    def discard(self, conn: Connection) -> None:
        """Drop a connection after a transient failure (closed in the background; others keep working)."""
        conn.broken = True
        if self._pid == os.getpid():
            conn.close(wait=False)

    def run(self, fn: Callable[[nfs_rs.Client], T], rel: str, *, mutation: bool = False) -> T:
        """Run ``fn(client)`` under the retry policy; translate failures.

        Args:
            fn: The operation; it receives a connected client (paths via :meth:`remote`).
            rel: The workspace path, for error messages.
            mutation: The operation changes the server; if a retry after a transient failure finds the target
                missing, :class:`MaybeDone` is raised instead of :class:`FileNotFound` (the first try may have
                taken effect).

        Raises:
            FileNotFound, AccessDenied, BrokerError: Translated failures.
            StorageUnavailable: Transient failures persisted for every attempt.
        """
        def once(attempt: int) -> T:
            conn = self.acquire()
            try:
                with native_call():
                    return fn(conn.client)
            except Exception as exc:
                if isinstance(exc, FileNotFoundError) and mutation and attempt > 1:
                    raise MaybeDone(f"{rel}: already done by an earlier attempt") from exc
                if is_transient(exc):
                    self.discard(conn)
                raise
            finally:
                conn.lock.release()

        try:
            return self.retry.run(once, retry_if=is_transient)
        except BrokerError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise StorageUnavailable(
                    f"{self.endpoint.location(rel)}: the NFS server kept failing after {self.retry.attempts} "
                    f"attempts: {getattr(exc, 'message', None) or exc}") from exc
            raise translate(exc, rel, self.endpoint.location(rel)) from exc

    def close(self) -> None:
        """Close every connection (a later operation reconnects)."""
        self._check_fork()
        with self._guard:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.broken = True  # files still open on it are reopened on a new connection when next used
        closers = [threading.Thread(target=conn.close, daemon=True) for conn in conns]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
