"""The optional workspace service: the v6 workspace REST API over a database (``pip install 'brokers[service]'``).

Run it with ``brokers serve`` (see :mod:`brokers.service.serve`), or build the ASGI app yourself::

    from brokers.service.app import create_app
    from brokers.service.settings import Settings
    app = create_app(Settings(database_url="sqlite:///brokers.db", tokens=("s3cr3t",)))

Importing this package imports nothing beyond the standard library; the web and database dependencies are
loaded by :mod:`brokers.service.app`.
"""

from __future__ import annotations

EXTRA_HINT = "pip install 'brokers[service]'"
"""How to install what the service needs."""

__all__ = ["EXTRA_HINT"]
