"""The Scale v6 workspace API (mounted under ``/v6`` and ``/v7``)."""
