"""The fsspec view of a broker: an fsspec filesystem whose calls go through the broker's own methods.

Registered with fsspec under the protocol ``brokers`` (an ``fsspec.specs`` entry point), which is how
:attr:`brokers.Broker.fs` finds it without the core importing this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fsspec import AbstractFileSystem

from .core.broker import FSSPEC_PROTOCOL
from .errors import FileNotFound

if TYPE_CHECKING:
    from .core.broker import Broker

__all__ = ["BrokerFileSystem"]


class BrokerFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """fsspec view of a broker: paths are workspace paths; reads and atomic writes go through the broker."""

    protocol = FSSPEC_PROTOCOL
    cachable = False

    def __init__(self, broker: Broker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.broker = broker

    def __repr__(self) -> str:
        return f"BrokerFileSystem({self.broker!r})"

    def _rel(self, path: str) -> str:
        return str(self._strip_protocol(path)).strip("/")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """List a directory (directories are implied by file paths)."""
        rel = self._rel(path)
        entries: dict[str, dict[str, Any]] = {}
        for item in self.broker.list(rel, recursive=True):
            rest = item.path[len(rel) + 1:] if rel else item.path
            head, sep, _ = rest.partition("/")
            name = f"{rel}/{head}" if rel else head
            if sep:
                entries.setdefault(name, {"name": name, "size": 0, "type": "directory"})
            else:
                entries[name] = {"name": name, "size": item.size, "type": "file", "mtime": item.modified}
        if not entries:
            if rel and self.broker.exists(rel):
                info = self.broker.info(rel)
                entries[rel] = {"name": rel, "size": info.size, "type": "file"}
            elif rel:
                raise FileNotFoundError(path)
        out = sorted(entries.values(), key=lambda e: e["name"])
        return out if detail else [e["name"] for e in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Return the details of a file or an implied directory."""
        rel = self._rel(path)
        try:
            item = self.broker.info(rel) if rel else None
        except FileNotFound:
            item = None
        if item is not None:
            return {"name": rel, "size": item.size, "type": "file", "mtime": item.modified}
        if not rel or next(iter(self.broker.list(rel)), None) is not None:
            return {"name": rel, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode not in ("rb", "wb"):
            raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")
        return self.broker.open(self._rel(path), mode)  # type: ignore[arg-type]

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """Read a file or a byte range of it."""
        return self.broker.read_bytes(self._rel(path), start or 0, end)

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        """Write a whole file atomically."""
        self.broker.write_bytes(self._rel(path), value)

    def rm_file(self, path: str) -> None:
        """Delete a file."""
        self.broker.delete(self._rel(path))

    def _rm(self, path: str) -> None:
        self.broker.delete(self._rel(path), missing_ok=True)

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Move a file within the workspace."""
        self.broker.move(self._rel(path1), self._rel(path2))

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Directories are implicit in a workspace: nothing to do."""

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Directories are implicit in a workspace: nothing to do."""
