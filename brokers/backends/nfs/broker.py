"""NfsBroker: an NFS export, used through a mount where one exists, else through a userspace NFS client.

Two modes, chosen when the broker is built and reported by :attr:`NfsBroker.mode`:

- ``"mounted"``: ``/proc/self/mountinfo`` shows ``nfs_path`` (or an export above it) mounted on this machine: at
  ``host_path`` when one is configured (verified: it must show ``nfs_path``), else wherever it is found. Files
  are reached through the mount with the same local-filesystem code as the host broker
  (:class:`~brokers.core.local.LocalFiles`).
- ``"direct"``: nothing is mounted (a ``host_path`` that is not a mount of ``nfs_path`` counts as nothing, with a
  warning: a plain folder there is never written to). The broker speaks NFS itself with ``nfs-rs`` (the ``nfs``
  extra; NFSv3 or NFSv4.1, no root, no kernel module), with reused connections, retries and the same
  atomic-write scheme. Without nfs-rs an unmounted ``host_path`` is a :class:`~brokers.errors.MountError`.

Either way the volume a job needs is an NFS mount of the export, rendered from the configuration.
"""

from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ...config import AccessPolicy, NfsConfig, WorkspaceConfiguration
from ...config.endpoints import url_host
from ...core.file_broker import FileBroker, FileOperations
from ...core.local import LocalFiles
from ...core.mounts import Mount, mount_containing, parse_mountinfo, read_mounts
from ...core.volumes import Volume
from ...errors import AccessDenied, MissingDependency, MountError
from ...types import Capabilities
from .direct.client import DEFAULT_VERSION, ConnectionPool, Endpoint, load_nfs_rs

if TYPE_CHECKING:
    from .direct.files import DirectFiles

__all__ = ["NfsBroker", "find_mount", "host_path_problem"]

log = logging.getLogger("brokers.nfs")

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


def _shown(mount: Mount) -> tuple[str, set[str], str] | None:
    """For an NFS mount: its server as written, the names it answers to, and the server path at its mount point."""
    if not mount.fstype.startswith("nfs"):
        return None
    parsed = _split_source(mount.source)
    if parsed is None:
        return None
    host, source_export = parsed
    addrs = {host} | {o[5:].lower() for o in mount.options if o.startswith("addr=")}
    root = mount.root
    shown = posixpath.normpath(posixpath.join(source_export, root.lstrip("/"))) if root != "/" else source_export
    return host, addrs, shown


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
        found = _shown(mount)
        if found is None or server not in found[1]:
            continue
        shown = found[2]
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


def host_path_problem(server: str, export: str, host_path: str, mounts: list[Mount] | None) -> str | None:
    """Say why ``host_path`` does not show ``server:export``, or return None when it does.

    It does when the mount it lies on (the deepest mount point above its real path) is an NFS mount of that
    server, and the server path shown at ``host_path`` (the mount's export, plus ``host_path``'s place below the
    mount point) is ``export``: a mount of the export itself, or a directory of a mount of an export above it.

    Args:
        server: The server of ``nfs_path`` (IPv6 without brackets).
        export: The path of ``nfs_path`` on the server.
        host_path: The configured local directory.
        mounts: The mounts of this machine, or None when they cannot be read (then it cannot be verified).
    """
    if mounts is None:
        return "/proc/self/mountinfo cannot be read to check it"
    real = os.path.realpath(host_path)
    mount = mount_containing(real, mounts)
    if mount is None:
        return "no mount covers it"
    found = _shown(mount)
    if found is None:
        return f"it is on {mount.fstype} {mount.source} (mounted at {mount.point}), not an NFS mount"
    host, addrs, shown = found
    below = posixpath.relpath(real, mount.point)
    at_host_path = posixpath.normpath(posixpath.join(shown, below)) if below != "." else shown
    if server.lower().strip("[]") not in addrs or at_host_path != posixpath.normpath(export):
        return f"it shows {url_host(host)}:{at_host_path}"
    return None


class NfsBroker(FileBroker):
    """An NFS export (``broker.nfs_path`` = ``server:/export[/sub]``).

    Mounted mode behaves like the host broker on the mount (atomic rename, ``pread``, in-place
    ``download(partial=True)``). Direct mode fetches only the asked range of a ranged read, streams with a
    bounded buffer, writes atomically (temporary name, then RENAME), reports capacity from FSSTAT, does not
    follow symbolic links, and copies on ``download(partial=True)`` since nothing is mounted.

    Attributes:
        mode: ``"mounted"`` or ``"direct"``.
        host_path: The local directory of the workspace (mounted mode), else None.
        host_path_problem: Why the configured ``host_path`` is not used (it is not a mount of ``nfs_path``), or
            None.
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
        mounts = parse_mountinfo(mountinfo) if mountinfo is not None else read_mounts()
        self.host_path_problem: str | None = None
        local: str | None
        if self.nfs.host_path:
            self.host_path_problem = self.check_host_path(self.nfs, mounts)
            local = None if self.host_path_problem else self.nfs.host_path
        else:
            local = find_mount(self.server, self.export, mounts or [])
        self.host_path: str | None = local
        self.mode: Literal["mounted", "direct"] = "mounted" if local else "direct"
        self._direct: DirectFiles | None = None
        self.files: FileOperations
        if local:
            self.files = LocalFiles(local)
            self.capabilities = replace(type(self).capabilities, local_files=True)  # type: ignore[misc]
        else:
            try:
                load_nfs_rs()  # fail now, with the install hint, rather than at the first operation
            except MissingDependency as exc:
                if self.host_path_problem is None:
                    raise
                raise MountError(f"{self.host_path_problem}; mount the export there, or install the userspace "
                                 "NFS client (pip install 'brokers[nfs]') to work without a mount") from exc
            if self.host_path_problem is not None:
                log.warning("%s; reaching the export with the userspace NFS client instead", self.host_path_problem)
            from .direct.files import DirectFiles

            endpoint = Endpoint(self.server, self.export, self.version, self.nfs.nfs_port, self.nfs.mount_port)
            self._direct = DirectFiles(ConnectionPool(endpoint))
            self.files = self._direct

    def __getstate__(self) -> dict[str, Any]:
        """Pickle as the configuration: connections and mounts are found again where it is unpickled."""
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from the configuration (the mode is chosen again, from this machine's mounts)."""
        self.__init__(state["config"])  # type: ignore[misc]

    @classmethod
    def with_policy(cls, config: WorkspaceConfiguration, policy: AccessPolicy) -> NfsBroker:
        """Build the broker of a configuration this process did not write, reaching only what ``policy`` allows.

        A mounted export is used as it is (the operator mounted it); direct mode connects to the server as this
        process's uid and gid, so it needs the server on ``policy.nfs_server_allow``.

        Raises:
            AccessDenied: The broker would connect to a server the policy does not allow (before any packet).
        """
        broker = cls(config)
        if broker.mode == "direct" and not policy.nfs_server_allowed(broker.server):
            broker.close()
            raise AccessDenied(f"{broker.server}:{broker.export}: connecting to the NFS server {broker.server} is "
                               "not allowed by this deployment")
        return broker

    @staticmethod
    def check_host_path(nfs: NfsConfig, mounts: list[Mount] | None) -> str | None:
        """Say why ``nfs.host_path`` is not a mount of ``nfs.nfs_path`` (a sentence naming both), or None."""
        assert nfs.host_path
        problem = host_path_problem(nfs.server, nfs.export, nfs.host_path, mounts)
        return None if problem is None else (
            f"broker.host_path {nfs.host_path} is not a mount of {nfs.nfs_path}: {problem}")

    @classmethod
    def validation_warnings(cls, config: WorkspaceConfiguration,
                            policy: AccessPolicy | None = None) -> list[dict[str, str]]:
        """Return ``host_path_not_mounted`` when ``host_path`` is a folder but not a mount of ``nfs_path``.

        A ``host_path`` that is no folder at all has the ``host_path_missing`` warning already. Only this
        machine's mount table is read (``policy`` has nothing to limit).
        """
        del policy
        nfs = config.broker
        if not isinstance(nfs, NfsConfig) or not nfs.host_path or not os.path.isdir(nfs.host_path):
            return []
        problem = cls.check_host_path(nfs, read_mounts())
        if problem is None:
            return []
        return [{"name": "host_path_not_mounted", "path": "/broker/host_path",
                 "description": f"{problem}; the broker will reach the export with its userspace NFS client "
                                "instead"}]

    def describe(self) -> str:
        """``nfs://server/export`` (IPv6 in brackets)."""
        return f"nfs://{url_host(self.server)}{self.export}"

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
