"""Broker types and their classes: the built-ins first, then the ``brokers.brokers`` entry points.

Everything that needs to know which broker types exist goes through here: building a broker
(:func:`get_broker`), and loading or validating a configuration (third-party types bring their own
``config_schema``; access checks are each type's ``validation_warnings``). The configuration layer itself knows
no backend; it receives :func:`find_broker_class` as its lookup.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from .config import AccessPolicy, ConfigSource, ValidationResult, WorkspaceConfiguration, load, validate
from .core.broker import Broker
from .errors import BrokerError

__all__ = ["ENTRY_POINT_GROUP", "broker_class", "broker_types", "find_broker_class", "get_broker",
           "load_configuration", "validate_configuration"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "brokers.brokers"
_BUILTIN = {"host": "brokers.backends.host:HostBroker", "nfs": "brokers.backends.nfs:NfsBroker",
            "s3": "brokers.backends.s3:S3Broker"}


def broker_types() -> list[str]:
    """Return every broker type that can be used: the built-ins and those installed as entry points."""
    return sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def broker_class(broker_type: str) -> type[Broker]:
    """Return the broker class registered for ``broker_type``.

    Raises:
        BrokerError: No broker of that type is installed, or what is registered is not a Broker.
    """
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


def find_broker_class(broker_type: str) -> type[Broker] | None:
    """Return the broker class of a type, or None when none is installed (the lookup validation uses)."""
    try:
        return broker_class(broker_type)
    except BrokerError:
        log.debug("no usable broker of type %r", broker_type, exc_info=True)
        return None


def load_configuration(source: ConfigSource) -> WorkspaceConfiguration:
    """Validate a configuration and return it as a typed, immutable object.

    Args:
        source: A dict, JSON text, or a path to a JSON file (or an already loaded configuration).

    Raises:
        InvalidConfiguration: The configuration is not valid; ``.errors`` lists every problem found.
    """
    return load(source, find_broker_class)


def validate_configuration(config: object, previous: object = None, *, check_access: bool = True,
                           policy: AccessPolicy | None = None) -> ValidationResult:
    """Validate a workspace configuration without raising.

    Args:
        config: A dict, JSON text, or a path to a JSON file. Anything else is reported as an error.
        previous: The configuration this one replaces, if any; a change of broker type gives the
            ``broker_type`` warning.
        check_access: Also try to reach the store (S3: the ``bucket_access`` warning). Set to False for a
            purely offline check.
        policy: What the access check may reach (S3: allowed endpoints, ambient credentials); None: anything.
            A service validating its users' configurations passes its own.

    Returns:
        The result; ``result.to_dict()`` is the documented ``{is_valid, errors, warnings}`` response.
    """
    return validate(config, previous, check_access=check_access, lookup=find_broker_class, policy=policy)


def get_broker(config: ConfigSource, *, policy: AccessPolicy | None = None) -> Broker:
    """Return the broker for a workspace configuration.

    Args:
        config: A dict, JSON text, a path to a JSON file, or a loaded configuration.
        policy: What the broker may reach beyond its configuration (S3: allowed endpoints, ambient
            credentials), for a process running configurations it did not write; None: anything.

    Returns:
        A :class:`~brokers.backends.host.HostBroker`, :class:`~brokers.backends.nfs.NfsBroker`,
        :class:`~brokers.backends.s3.S3Broker` or a registered third-party broker.

    Raises:
        InvalidConfiguration: The configuration is not valid.
        BrokerError: No broker of that type is installed.
        AccessDenied: ``policy`` does not let the broker reach its store.
    """
    loaded = load_configuration(config)
    cls = broker_class(loaded.broker_type)
    return cls(loaded) if policy is None else cls.with_policy(loaded, policy)
