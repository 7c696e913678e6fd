"""Warnings about a valid configuration: a changed broker type, inline keys, a missing path, an unreachable store."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from .endpoints import AccessPolicy
from .lookup import BrokerLookup
from .messages import item
from .model import WorkspaceConfiguration
from .source import SourceError, read_source

__all__ = ["warnings_for"]

log = logging.getLogger(__name__)


def warnings_for(config: WorkspaceConfiguration, previous: object,
                 access: BrokerLookup | None, policy: AccessPolicy | None = None) -> list[dict[str, str]]:
    """Return the warnings of a valid configuration.

    Args:
        config: The configuration.
        previous: The configuration it replaces, or None (a change of broker type is warned about).
        access: Finds the broker class whose ``validation_warnings`` try to reach the store; None: offline.
        policy: What the access check may reach (endpoints, ambient credentials); None: anything. A broker
            type whose ``validation_warnings`` takes no policy is not asked under one.
    """
    warnings: list[dict[str, str]] = []
    if previous is not None:
        try:
            old = read_source(previous)
        except SourceError:
            old = None
        old_broker = old.get("broker") if isinstance(old, Mapping) else None
        old_type = old_broker.get("type") if isinstance(old_broker, Mapping) else None
        if old_type is not None and old_type != config.broker_type:
            warnings.append(item("broker_type", "Changing the broker type may disrupt queued/running jobs.",
                                 ["broker", "type"]))
    broker = config.broker
    if getattr(broker, "credentials", None) is not None:
        warnings.append(item("inline_credentials", "broker.credentials stores access keys in the configuration; "
                             "prefer the AWS credential chain (environment, profile, instance role), or keep "
                             "this configuration secret", ["broker", "credentials"]))
    host_path = getattr(broker, "host_path", None)
    if host_path and not os.path.isdir(host_path):
        warnings.append(item("host_path_missing", f"broker.host_path {host_path!r} does not exist on this machine "
                             "(or is not a directory)", ["broker", "host_path"]))
    if access is not None:
        try:
            spec = access(config.broker_type)
            if spec is not None:
                found = (spec.validation_warnings(config) if policy is None
                         else spec.validation_warnings(config, policy=policy))
                warnings.extend(found)
        except Exception as exc:  # validation must never raise
            log.debug("access check for %s failed: %s", config.broker_type, type(exc).__name__)
    return warnings
