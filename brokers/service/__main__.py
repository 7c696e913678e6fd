"""``python -m brokers.service``: the same as ``brokers serve``."""

from __future__ import annotations

import sys

from .serve import main

if __name__ == "__main__":
    sys.exit(main())
