"""Counting files and bytes for ``usage()`` and ``folder_usage()``: the one tally of every backend."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from ..types import FolderUsage

__all__ = ["Tally", "folder_at", "folder_shares"]


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


def folder_at(directory: str, depth: int) -> str:
    """The folder at ``depth`` that a file directly in ``directory`` counts in: its first ``depth`` components.

    ``folder_at("a/b", 1) == "a"``, ``folder_at("a", 2) == "a"`` (a file less deep counts in its own folder),
    ``folder_at("", d) == ""`` (the root), and depth 0 puts everything in ``""``.
    """
    if not directory or depth <= 0:
        return ""
    return "/".join(directory.split("/", depth)[:depth])


def folder_shares(tallies: Mapping[str, Tally]) -> tuple[Tally, tuple[FolderUsage, ...]]:
    """Merge per-folder tallies: the whole workspace's (hard links once overall) and each folder's share.

    Shares are sorted by path; a folder that counted no file has none.
    """
    total = Tally()
    shares = []
    for path in sorted(tallies):
        tally = tallies[path]
        total.merge(tally)
        if tally.files:
            shares.append(FolderUsage(path, tally.used, tally.files))
    return total, tuple(shares)
