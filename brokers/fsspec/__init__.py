"""The fsspec view of any broker (``broker.fs``), on the broker's own methods.

Registered with fsspec under the protocol ``brokers`` (an ``fsspec.specs`` entry point), which is how
:attr:`brokers.Broker.fs` finds it without the core importing this package. ``filesystem`` is the view,
``files`` its transaction writes, ``handles`` the workspace names its ``brokers://`` URLs carry.
"""

from __future__ import annotations

from .filesystem import BrokerFileSystem

__all__ = ["BrokerFileSystem"]
