"""Local file I/O: broker file operations over a directory on this machine (host, mounted NFS)."""

from __future__ import annotations

from .files import LocalFiles
from .io import kernel_copy, pread_range

__all__ = ["LocalFiles", "kernel_copy", "pread_range"]
