"""The process's umask, read without changing it (a change is process-wide and races with other threads).

Linux shows it in ``/proc/self/status`` (the ``Umask:`` line, since 4.7). Where that cannot be read, the value
the process had when this module was first imported stands in: it is found once, then, by setting the umask and
setting it back (the one umask change ``brokers`` ever makes, and only on such systems).
"""

from __future__ import annotations

import os

__all__ = ["current_umask"]

_STATUS = "/proc/self/status"


def _from_status() -> int | None:
    try:
        with open(_STATUS, "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _by_setting() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_seen = _from_status()
_AT_IMPORT: int = _seen if _seen is not None else _by_setting()
"""The umask when this module was imported (read from ``/proc`` where it can be, without a change)."""


def current_umask() -> int:
    """Return the process's umask now (``/proc/self/status``), else the one it had at import."""
    mask = _from_status()
    return _AT_IMPORT if mask is None else mask
