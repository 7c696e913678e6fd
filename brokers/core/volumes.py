"""How a job mounts a workspace: one :class:`Volume`, rendered for docker, kubernetes or ``mount``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..config.endpoints import url_host

__all__ = ["Volume"]


@dataclass(frozen=True)
class Volume:
    """A mount a job needs to see the workspace as files.

    Attributes:
        kind: ``"bind"`` (a local directory, also an S3 bucket FUSE-mounted at ``host_path``) or ``"nfs"``.
        source: The local directory (bind) or the export path (nfs).
        server: The NFS server (nfs only).
        options: Mount options (nfs: passed as ``-o``; e.g. ``("hard", "nfsvers=4.1")``).
        read_only: Whether the job must not write through the mount (S3 FUSE mounts: writes go through S3); also
            true when ``"ro"`` is among the options, so every rendering (Kubernetes takes no options) keeps it.
    """

    kind: Literal["bind", "nfs"]
    source: str
    server: str | None = None
    options: tuple[str, ...] = ()
    read_only: bool = False

    def __post_init__(self) -> None:
        if "ro" in self.options and not self.read_only:
            object.__setattr__(self, "read_only", True)

    def _mount_options(self) -> str:
        opts = list(self.options)
        if self.read_only and "ro" not in opts:
            opts.append("ro")
        return ",".join(opts)

    def docker_mount(self, target: str) -> str:
        """Return the value of ``docker run --mount`` that mounts this volume at ``target``.

        docker parses the value as CSV: a field holding a comma or a quote (an awkward ``host_path``, the NFS
        options) is quoted, so it cannot add or override fields (``source=/a,target=/etc``).
        """
        ro = ["readonly"] if self.read_only else []
        if self.kind == "bind":
            return _csv(["type=bind", f"source={self.source}", f"target={target}", *ro])
        addr = f"addr={self.server}" + (f",{self._mount_options()}" if self._mount_options() else "")
        return _csv(["type=volume", f"target={target}", *ro, "volume-driver=local", "volume-opt=type=nfs",
                     f"volume-opt=o={addr}", f"volume-opt=device=:{self.source}"])

    def kubernetes_volume(self, name: str) -> dict[str, Any]:
        """Return a Kubernetes pod ``volumes`` entry named ``name``.

        An ``nfs`` volume carries ``readOnly``; a ``hostPath`` volume has no such field, so a read-only bind is
        read-only through the container's ``volumeMounts`` entry: use :meth:`kubernetes_mount` with it.
        """
        if self.kind == "bind":
            return {"name": name, "hostPath": {"path": self.source, "type": "Directory"}}
        return {"name": name, "nfs": {"server": self.server, "path": self.source, "readOnly": self.read_only}}

    def kubernetes_mount(self, name: str, mount_path: str) -> dict[str, Any]:
        """Return the container's ``volumeMounts`` entry for volume ``name`` at ``mount_path`` (with ``readOnly``)."""
        return {"name": name, "mountPath": mount_path, "readOnly": self.read_only}

    def mount_argv(self, target: str) -> list[str]:
        """Return the ``mount`` command line that mounts this volume at ``target`` on this machine."""
        if self.kind == "bind":
            argv = ["mount", "--bind"]
            if self.read_only:
                argv += ["-o", "ro"]
            return [*argv, self.source, target]
        server = url_host(self.server) if self.server else self.server
        opts = self._mount_options()
        return ["mount", "-t", "nfs", *(["-o", opts] if opts else []), f"{server}:{self.source}", target]


def _csv(fields: list[str]) -> str:
    """Join fields as one CSV record (docker's ``--mount`` syntax), quoting those that need it."""
    return ",".join('"' + f.replace('"', '""') + '"' if any(c in f for c in ',"\r\n') else f for f in fields)
