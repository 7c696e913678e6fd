"""The service's HTTP APIs, one package per dialect (``v6``: Scale v6/v7), with shared errors and access checks."""
