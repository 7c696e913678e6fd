"""The host backend: a workspace that is a directory on this machine."""

from __future__ import annotations

from .broker import HostBroker

__all__ = ["HostBroker"]
