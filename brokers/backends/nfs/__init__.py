"""The NFS backend: an export used through a verified mount, or through the userspace client (``direct/``)."""

from __future__ import annotations

from .broker import NfsBroker

__all__ = ["NfsBroker"]
