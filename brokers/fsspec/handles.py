"""Workspace handles: the name a ``brokers://<handle>/<path>`` URL gives the workspace it points into.

An fsspec URL can only name a filesystem through arguments it carries, and a workspace's configuration may hold
secrets that must never be written into a URL. So a URL carries a handle, a digest of the broker's secret-free
pickle, and this process keeps a weak map from handles to the brokers it has made a view of. A URL therefore
opens in the process (or a forked child) whose view produced it; elsewhere, pass the filesystem itself (it
pickles without secrets) or rebuild it from :meth:`~brokers.fsspec.BrokerFileSystem.to_json`.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.broker import Broker

__all__ = ["handle_of", "lookup"]

_LIVE: dict[str, weakref.WeakSet[Broker]] = {}
"""Handle -> the live brokers it names (equivalent: same workspace and credentials; any one serves)."""
_LOCK = threading.Lock()


def handle_of(broker: Broker) -> str:
    """Return the handle of ``broker`` (the same for brokers of one workspace and credentials) and remember it."""
    try:
        digest = hashlib.sha256(pickle.dumps(broker, protocol=4)).hexdigest()[:20]
    except Exception:  # a third-party broker that cannot be pickled: a handle for this object only
        digest = f"object-{id(broker):x}"
    with _LOCK:
        for gone in [handle for handle, alive in _LIVE.items() if not alive]:
            del _LIVE[gone]
        _LIVE.setdefault(digest, weakref.WeakSet()).add(broker)
    return digest


def lookup(handle: str) -> Broker | None:
    """Return the live broker a handle names in this process, or None."""
    with _LOCK:
        return next(iter(_LIVE.get(handle, ())), None)
