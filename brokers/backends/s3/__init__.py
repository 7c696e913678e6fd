"""The S3 backend: a workspace in an S3 or S3-compatible bucket, optionally under a key prefix.

``broker`` (S3Broker), ``client`` (boto3 client, retries, credential registry), ``errors`` (the one error table),
``transfer`` (uploads, copies, deletes), ``reader`` (streams, verified downloads).
"""

from __future__ import annotations

from .broker import S3Broker
from .transfer import TransferSettings

__all__ = ["S3Broker", "TransferSettings"]
