"""What validation needs to know of a broker type, without importing any backend.

The configuration layer sits below the backends, so it never imports one: the registry hands validation a
:data:`BrokerLookup`, which finds the broker class of a type (built-in or third-party) when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .endpoints import AccessPolicy
from .model import WorkspaceConfiguration

__all__ = ["BrokerLookup", "BrokerSpec"]


class BrokerSpec(Protocol):
    """The part of a broker class validation uses (a :class:`brokers.Broker` subclass satisfies it)."""

    @property
    def config_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the ``broker`` object of a third-party type (built-ins are in the main schema)."""

    def validation_warnings(self, config: WorkspaceConfiguration,
                            policy: AccessPolicy | None = None) -> list[dict[str, str]]:
        """Warnings from trying to reach the store (e.g. an unreachable S3 bucket), within ``policy``."""


BrokerLookup = Callable[[str], "BrokerSpec | None"]
"""Return the broker class of a ``broker.type``, or None when no such type is installed."""
