"""The broker contract and what every backend shares.

``broker`` (the contract), ``streams`` (atomic writes, raw readers), ``file_broker`` (brokers built on file operations),
``local`` (local file I/O), ``retry`` (the one retry policy), ``mounts`` (the one mountinfo parser),
``errno_map`` (OS errors to broker errors), ``tally`` (usage counting), ``volumes`` (how jobs mount a workspace),
``umask`` (the process's umask, read without changing it).
The core imports no backend, no fsspec view, no CLI and no service.
"""

from __future__ import annotations

from .broker import Broker
from .streams import Writer
from .volumes import Volume

__all__ = ["Broker", "Volume", "Writer"]
