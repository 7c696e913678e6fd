"""NfsBroker: an NFS export, used through a mount where one exists, else through a userspace NFS client.

Two modes, chosen when the broker is built and reported by :attr:`NfsBroker.mode`:

- ``"mounted"``: ``host_path`` is configured, or ``/proc/self/mountinfo`` shows ``nfs_path`` (or an export
  above it) mounted on this machine. Files are reached through the mount with the same local-filesystem code as
  the host broker (:class:`~brokers.core.local.LocalFiles`).
- ``"direct"``: nothing is mounted. The broker speaks NFS itself with ``nfs-rs`` (the ``nfs`` extra; NFSv3 or
  NFSv4.1, no root, no kernel module), with reused connections, retries and the same atomic-write scheme.

Either way the volume a job needs is an NFS mount of the export, rendered from the configuration.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Literal

from ...config import NfsConfig, WorkspaceConfiguration
from ...core.file_broker import FileBroker, FileOperations
from ...core.local import LocalFiles
from ...core.mounts import Mount, parse_mountinfo, read_mounts
from ...core.volumes import Volume
from ...errors import MountError
from ...types import Capabilities
from .direct.client import DEFAULT_VERSION, ConnectionPool, Endpoint, load_nfs_rs

if TYPE_CHECKING:
    from .direct.files import DirectFiles

__all__ = ["NfsBroker", "find_mount"]

DEFAULT_MOUNT_OPTIONS = ("hard",)
"""Options of a kernel mount when ``mount_options`` is not configured (plus nfsvers/port from the config)."""


def _split_source(source: str) -> tuple[str, str] | None:
    """Split a mount source ``server:/export`` (``[v6::addr]:/export``) into server and export path."""
    if source.startswith("["):
        host, sep, rest = source[1:].partition("]:")
    else:
        host, sep, rest = source.partition(":")
    if not sep or not rest.startswith("/"):
        return None
    return host.lower(), posixpath.normpath(rest)


def find_mount(server: str, export: str, mounts: list[Mount]) -> str | None:
    """Find where ``server:export`` is reachable through one of these NFS mounts.

    The mount may be of ``export`` itself or of a directory above it; the deepest match wins. A mount's server
    matches by name as written in its source or by the ``addr=`` the kernel resolved it to.

    Args:
        server: The server of ``nfs_path`` (IPv6 without brackets).
        export: The path of ``nfs_path`` on the server.
        mounts: The mounts of this machine (:func:`~brokers.core.mounts.parse_mountinfo`).

    Returns:
        The local directory that shows ``export``, or None.
    """
    want = posixpath.normpath(export)
    server = server.lower().strip("[]")
    best: tuple[int, str] | None = None
    for mount in mounts:
        if not mount.fstype.startswith("nfs"):
            continue
        parsed = _split_source(mount.source)
        if parsed is None:
            continue
        host, source_export = parsed
        addrs = {host} | {o[5:].lower() for o in mount.options if o.startswith("addr=")}
        if server not in addrs:
            continue
        root = mount.root
        shown = posixpath.normpath(posixpath.join(source_export, root.lstrip("/"))) if root != "/" else source_export
        if want == shown:
            rest = ""
        elif want.startswith(shown.rstrip("/") + "/"):
            rest = want[len(shown.rstrip("/")) + 1:]
        else:
            continue
        local = posixpath.join(mount.point, rest) if rest else mount.point
        if best is None or len(shown) > best[0]:
            best = (len(shown), local)
    return best[1] if best else None


class NfsBroker(FileBroker):
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
        mounts = parse_mountinfo(mountinfo) if mountinfo is not None else (read_mounts() or [])
        local = self.nfs.host_path or find_mount(self.server, self.export, mounts)
        self.host_path: str | None = local
        self.mode: Literal["mounted", "direct"] = "mounted" if local else "direct"
        self._direct: DirectFiles | None = None
        self.files: FileOperations
        if local:
            self.files = LocalFiles(local)
            self.capabilities = replace(type(self).capabilities, local_files=True)  # type: ignore[misc]
        else:
            load_nfs_rs()  # fail now, with the install hint, rather than at the first operation
            from .direct.files import DirectFiles

            endpoint = Endpoint(self.server, self.export, self.version, self.nfs.nfs_port, self.nfs.mount_port)
            self._direct = DirectFiles(ConnectionPool(endpoint))
            self.files = self._direct

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
