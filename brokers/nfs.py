"""NfsBroker: an NFS export, used through a mount where one exists, else through a userspace NFS client.

Two modes, chosen when the broker is built and reported by :attr:`NfsBroker.mode`:

- ``"mounted"``: ``host_path`` is configured, or ``/proc/self/mountinfo`` shows ``nfs_path`` (or an export
  above it) mounted on this machine. Files are reached through the mount with the same local-filesystem code as
  the host broker (:class:`~brokers.localfs.LocalFiles`).
- ``"direct"``: nothing is mounted. The broker speaks NFS itself with ``nfs-rs`` (the ``nfs`` extra; NFSv3 or
  NFSv4.1, no root, no kernel module), with reused connections, retries and the same atomic-write scheme.

Either way the volume a job needs is an NFS mount of the export, rendered from the configuration.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, TYPE_CHECKING, BinaryIO, ClassVar, Literal

from ._nfs_direct import DEFAULT_VERSION, ConnectionPool, Endpoint, load_nfs_rs
from .broker import Broker, Capabilities, Writer
from .configuration import NfsConfig, WorkspaceConfiguration
from .errors import MountError
from .localfs import LocalFiles
from .types import FileInfo, Usage
from .volumes import Volume

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ._nfs_files import DirectFiles

__all__ = ["NfsBroker", "find_mount"]

MOUNTINFO = "/proc/self/mountinfo"
DEFAULT_MOUNT_OPTIONS = ("hard",)
"""Options of a kernel mount when ``mount_options`` is not configured (plus nfsvers/port from the config)."""


def _unescape(field: str) -> str:
    """Undo the octal escapes of mountinfo fields (a space is written as backslash, 0, 4, 0)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _split_source(source: str) -> tuple[str, str] | None:
    """Split a mount source ``server:/export`` (``[v6::addr]:/export``) into server and export path."""
    if source.startswith("["):
        host, sep, rest = source[1:].partition("]:")
    else:
        host, sep, rest = source.partition(":")
    if not sep or not rest.startswith("/"):
        return None
    return host.lower(), posixpath.normpath(rest)


def find_mount(server: str, export: str, mountinfo: str) -> str | None:
    """Find where ``server:export`` is reachable through an NFS mount listed in a mountinfo text.

    The mount may be of ``export`` itself or of a directory above it; the deepest match wins. A mount's server
    matches by name as written in its source or by the ``addr=`` the kernel resolved it to.

    Args:
        server: The server of ``nfs_path`` (IPv6 without brackets).
        export: The path of ``nfs_path`` on the server.
        mountinfo: The text of ``/proc/self/mountinfo``.

    Returns:
        The local directory that shows ``export``, or None.
    """
    want = posixpath.normpath(export)
    server = server.lower().strip("[]")
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep < 6 or len(fields) < sep + 3 or not fields[sep + 1].startswith("nfs"):
            continue
        parsed = _split_source(_unescape(fields[sep + 2]))
        if parsed is None:
            continue
        host, source_export = parsed
        options = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
        addrs = {host} | {o[5:].lower() for o in options if o.startswith("addr=")}
        if server not in addrs:
            continue
        root = _unescape(fields[3])
        shown = posixpath.normpath(posixpath.join(source_export, root.lstrip("/"))) if root != "/" else source_export
        if want == shown:
            rest = ""
        elif want.startswith(shown.rstrip("/") + "/"):
            rest = want[len(shown.rstrip("/")) + 1:]
        else:
            continue
        local = os.path.join(_unescape(fields[4]), rest) if rest else _unescape(fields[4])
        if best is None or len(shown) > best[0]:
            best = (len(shown), local)
    return best[1] if best else None


def _read_mountinfo() -> str:
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class NfsBroker(Broker):
    """An NFS export (``broker.nfs_path`` = ``server:/export[/sub]``).

    Mounted mode behaves like the host broker on the mount (atomic rename, ``pread``, in-place
    ``download(partial=True)``). Direct mode fetches only the asked range of a ranged read, streams with a
    bounded buffer, writes atomically (temporary name, then RENAME), reports capacity from FSSTAT, does not
    follow symbolic links, and copies on ``download(partial=True)`` since nothing is mounted.

    Attributes:
        mode: ``"mounted"`` or ``"direct"``.
        host_path: The local directory of the workspace (mounted mode), else None.
    """

    broker_type: ClassVar[str] = "nfs"
    capabilities: ClassVar[Capabilities] = Capabilities(
        atomic_rename=True, ranged_read=True, server_side_copy=False, capacity=True, local_files=False)

    def __init__(self, config: WorkspaceConfiguration, *, mountinfo: str | None = None) -> None:
        super().__init__(config)
        assert isinstance(config.broker, NfsConfig)
        self.nfs: NfsConfig = config.broker
        self.server, self.export = self.nfs.server, self.nfs.export
        self.version = self.nfs.nfs_version or DEFAULT_VERSION
        local = self.nfs.host_path or find_mount(
            self.server, self.export, _read_mountinfo() if mountinfo is None else mountinfo)
        self.host_path: str | None = local
        self.mode: Literal["mounted", "direct"] = "mounted" if local else "direct"
        self._local: LocalFiles | None = None
        self._direct: DirectFiles | None = None
        if local:
            self._local = LocalFiles(local)
            self.capabilities = replace(type(self).capabilities, local_files=True)  # type: ignore[misc]
        else:
            load_nfs_rs()  # fail now, with the install hint, rather than at the first operation
            from ._nfs_files import DirectFiles

            endpoint = Endpoint(self.server, self.export, self.version, self.nfs.nfs_port, self.nfs.mount_port)
            self._direct = DirectFiles(ConnectionPool(endpoint))

    def describe(self) -> str:
        """``nfs://server/export`` (IPv6 in brackets)."""
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"nfs://{host}{self.export}"

    def close(self) -> None:
        """Close the userspace client's connections (a later operation reconnects); nothing in mounted mode."""
        if self._direct is not None:
            self._direct.pool.close()

    def __enter__(self) -> NfsBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _files(self) -> LocalFiles | DirectFiles:
        files = self._local or self._direct
        assert files is not None
        return files

    # ------------------------------------------------------------------ primitives
    def _info(self, rel: str) -> FileInfo:
        return self._files.info(rel)

    def _iter(self, prefix: str, recursive: bool) -> Iterator[FileInfo]:
        return self._files.iter(prefix, recursive)

    def _read(self, rel: str, start: int, end: int | None) -> bytes:
        return self._files.read(rel, start, end)

    def _reader(self, rel: str, buffer_size: int) -> BinaryIO:
        return self._files.reader(rel, buffer_size)

    def _writer(self, rel: str) -> Writer:
        return self._files.writer(rel)

    def _remove(self, rel: str) -> None:
        self._files.remove(rel)

    def _remove_all(self) -> int:
        return self._files.remove_all()

    def _usage(self) -> Usage:
        return self._files.usage()

    # ------------------------------------------------------------------ hooks
    def _rename(self, src: str, dst: str) -> None:
        self._files.rename(src, dst)

    def _upload(self, local: str, rel: str) -> None:
        if self._local is not None:
            self._local.upload(local, rel)
        else:
            super()._upload(local, rel)

    def _download_to(self, rel: str, out: IO[bytes]) -> None:
        if self._local is not None:
            self._local.download_to(rel, out.fileno())
        else:
            super()._download_to(rel, out)

    def _local_path(self, rel: str) -> str | None:
        if self._local is None:
            return None
        path = self._local.path(rel)
        return path if os.path.isfile(path) else None

    def _cleanup(self, older_than: float) -> int:
        return self._files.cleanup(older_than)

    def mount_options(self) -> tuple[str, ...]:
        """Options of a kernel mount: ``mount_options``, else defaults plus ``nfsvers``/``port``/``mountport``."""
        if self.nfs.mount_options is not None:
            return self.nfs.mount_options
        opts = [*DEFAULT_MOUNT_OPTIONS, f"nfsvers={self.version}"]
        if self.nfs.nfs_port is not None:
            opts.append(f"port={self.nfs.nfs_port}")
        if self.nfs.mount_port is not None and self.version == "3":
            opts.append(f"mountport={self.nfs.mount_port}")
        return tuple(opts)

    def _volume(self) -> Volume:
        return Volume(kind="nfs", source=self.export, server=self.server, options=self.mount_options())

    def mount(self, target: str) -> None:
        """Mount the export at ``target`` with the kernel NFS client (needs root and kernel NFS support).

        The broker itself never needs this: without a mount it uses its userspace client (direct mode).

        Raises:
            MountError: The mount failed; the message says why and that direct mode needs no mount.
        """
        try:
            super().mount(target)
        except MountError as exc:
            raise MountError(
                f"cannot mount {self.describe()} at {target}: {exc}. This broker does not need the mount: "
                f"without one it reads and writes through its userspace NFS client (direct mode)") from exc

    def _filesystem(self) -> AbstractFileSystem:
        if self._local is None:
            return super()._filesystem()
        from fsspec.implementations.dirfs import DirFileSystem
        from fsspec.implementations.local import LocalFileSystem

        return DirFileSystem(path=self._local.root, fs=LocalFileSystem())
