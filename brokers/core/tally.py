"""Counting files and bytes for ``usage()``: the one tally of every backend."""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["Tally"]


class Tally:
    """Bytes and files counted by a walk or a listing; a file with several hard links counts its bytes once.

    Attributes:
        size: Bytes of the files counted without a link key.
        files: Files counted (every hard link is a file).
        linked: Size of each file with several links, by its identity (``(st_dev, st_ino)``, an NFS file id).
    """

    __slots__ = ("files", "linked", "size")

    def __init__(self) -> None:
        self.size = 0
        self.files = 0
        self.linked: dict[Hashable, int] = {}

    def add(self, size: int, link: Hashable | None = None) -> None:
        """Count one file; ``link`` identifies a file that has several hard links (its bytes count once)."""
        self.files += 1
        if link is None:
            self.size += size
        else:
            self.linked[link] = size

    def merge(self, other: Tally) -> None:
        """Add what another tally counted (a subtree walked elsewhere)."""
        self.size += other.size
        self.files += other.files
        self.linked.update(other.linked)

    @property
    def used(self) -> int:
        """Bytes used: every file once."""
        return self.size + sum(self.linked.values())
