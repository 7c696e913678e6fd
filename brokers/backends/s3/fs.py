"""The fsspec view of an S3 workspace: s3fs under a :class:`DirFileSystem` rooted at ``bucket/prefix``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import s3fs
from fsspec.implementations.dirfs import DirFileSystem

from ...config import MASK

if TYPE_CHECKING:
    from ...core.broker import Broker

__all__ = ["S3WorkspaceFileSystem", "workspace_filesystem"]


class S3WorkspaceFileSystem(DirFileSystem):  # type: ignore[misc]
    """An s3fs filesystem confined to the workspace prefix.

    It pickles as its broker (which carries no secret, see :mod:`brokers.backends.s3.client`), never as s3fs's
    ``storage_options`` (which hold the keys): unpickled, it is the unpickled broker's ``fs``.
    """

    def __init__(self, *, broker: Broker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.broker = broker

    def __repr__(self) -> str:
        return f"S3WorkspaceFileSystem({self.broker.describe()})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _from_broker, (self.broker,)


def _from_broker(broker: Broker) -> Any:
    return broker.fs


def workspace_filesystem(broker: Broker, options: dict[str, Any], root: str) -> S3WorkspaceFileSystem:
    """Return the workspace filesystem of ``broker``: ``S3FileSystem(**options)`` rooted at ``root``."""
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    # s3fs connects with the key/secret attributes it set above; storage_options only serve to rebuild or
    # serialise the filesystem (to_json, to_dict, fsspec pickling), which must never carry a secret.
    for name in ("key", "secret", "token"):
        if fs.storage_options.get(name):
            fs.storage_options[name] = MASK
    return S3WorkspaceFileSystem(broker=broker, path=root, fs=fs, skip_instance_cache=True)
