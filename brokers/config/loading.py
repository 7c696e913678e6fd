"""Load a configuration: validate it, then build the typed object, or raise with every error at once."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InvalidConfiguration
from .lookup import BrokerLookup
from .model import WorkspaceConfiguration
from .source import ConfigSource
from .validation import check

__all__ = ["load"]


def load(source: ConfigSource, lookup: BrokerLookup | None = None) -> WorkspaceConfiguration:
    """Validate a configuration and return it as a typed, immutable object.

    Args:
        source: A dict, JSON text, or a path to a JSON file (or an already loaded configuration).
        lookup: Finds third-party broker types (their ``config_schema``); None knows the built-ins only.

    Returns:
        The configuration.

    Raises:
        InvalidConfiguration: The configuration is not valid; ``.errors`` lists every problem found.
    """
    if isinstance(source, WorkspaceConfiguration):
        return source
    data, errors = check(source, lookup)
    if errors:
        raise InvalidConfiguration(errors)
    assert isinstance(data, Mapping)
    return WorkspaceConfiguration.from_valid_dict(data)
