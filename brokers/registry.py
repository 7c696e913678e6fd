"""Find the broker class for a ``broker.type``: built-ins first, then the ``brokers.brokers`` entry points."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from .configuration import ConfigSource, load_configuration
from .errors import BrokerError

if TYPE_CHECKING:
    from .broker import Broker

__all__ = ["ENTRY_POINT_GROUP", "broker_class", "broker_types", "get_broker"]

ENTRY_POINT_GROUP = "brokers.brokers"
_BUILTIN = {"host": "brokers.host:HostBroker", "nfs": "brokers.nfs:NfsBroker", "s3": "brokers.s3:S3Broker"}


def broker_types() -> list[str]:
    """Return every broker type that can be used: the built-ins and those installed as entry points."""
    return sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def broker_class(broker_type: str) -> type[Broker]:
    """Return the broker class registered for ``broker_type``.

    Raises:
        BrokerError: No broker of that type is installed.
    """
    from .broker import Broker

    target = _BUILTIN.get(broker_type)
    if target is not None:
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == broker_type]
        if not found:
            raise BrokerError(f"no broker of type {broker_type!r} is installed (known: {', '.join(broker_types())})")
        cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Broker)):
        raise BrokerError(f"the broker registered for {broker_type!r} is not a brokers.Broker subclass")
    return cls


def get_broker(config: ConfigSource) -> Broker:
    """Return the broker for a workspace configuration.

    Args:
        config: A dict, JSON text, a path to a JSON file, or a loaded configuration.

    Returns:
        A :class:`~brokers.host.HostBroker`, :class:`~brokers.nfs.NfsBroker`, :class:`~brokers.s3.S3Broker` or a
        registered third-party broker.

    Raises:
        InvalidConfiguration: The configuration is not valid.
        BrokerError: No broker of that type is installed.
    """
    loaded = load_configuration(config)
    return broker_class(loaded.broker_type)(loaded)
