"""File objects of the fsspec view that the broker's own streams do not cover: writes inside a transaction."""

from __future__ import annotations

import io
from typing import Any

from ..core.streams import WriteStream

__all__ = ["DeferredWrite"]


class DeferredWrite(io.BufferedIOBase):
    """A write inside an fsspec transaction: closing keeps it pending; the transaction commits or discards it.

    Until :meth:`commit`, nothing is visible at the path (the broker's atomic write is still open).
    """

    def __init__(self, stream: WriteStream) -> None:
        super().__init__()
        self._stream = stream
        self.name = stream.name

    def writable(self) -> bool:
        """True: the file is for writing."""
        return True

    def write(self, data: Any) -> int:
        """Pass data on to the pending write."""
        if self.closed:
            raise ValueError("write to a closed file")
        return self._stream.write(data)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.discard()
        self.close()

    def commit(self) -> None:
        """Make the file visible (called when the transaction ends well)."""
        self._stream.close()

    def discard(self) -> None:
        """Drop the write (called when the transaction fails); the path keeps its old content."""
        self._stream.abort()
