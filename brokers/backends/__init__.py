"""The built-in backends, one package each: ``host``, ``nfs``, ``s3``. They never import each other.

Nothing is imported here: :mod:`brokers.registry` imports a backend when its type is first used, so
``import brokers`` does not import boto3 or nfs-rs.
"""
