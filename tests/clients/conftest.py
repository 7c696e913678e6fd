"""Workspaces for the client tests: host, S3 under a prefix, S3 at the bucket root, NFS direct mode (v3, v4.1).

Each :class:`Workspace` carries the broker, one ``broker.fs`` instance (the same one for a whole test, so cached
listings would show) and ``stored()``: the files as the store itself holds them (S3 keys through an independent
boto3 client, local files through the backing folder), relative to the workspace. A stray temp file, a key outside
the prefix or a ``prefix//key`` shows there, whatever ``broker.list`` or the fs say.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BACKENDS = [
    pytest.param("host", id="host"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
    pytest.param("s3_root", id="s3_root", marks=pytest.mark.s3),
    pytest.param("nfs3", id="nfs3", marks=pytest.mark.nfs),
    pytest.param("nfs41", id="nfs41", marks=pytest.mark.nfs),
]
S3_BACKENDS = [p for p in BACKENDS if p.id.startswith("s3")]
PREFIX = "ws"  # tests/fixtures/s3.py: s3_config's prefix


@dataclass
class Workspace:
    """A fresh, empty workspace of one backend."""

    backend: str
    broker: Any
    stored: Callable[[], list[str]]
    fs: Any = field(init=False)

    def __post_init__(self) -> None:
        self.fs = self.broker.fs

    def listed(self, prefix: str = "") -> list[str]:
        """The paths ``broker.list`` shows under ``prefix``, sorted."""
        return sorted(i.path for i in self.broker.list(prefix))


def _walk(root: Path) -> Callable[[], list[str]]:
    def stored() -> list[str]:
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)

    return stored


def _keys(client: Any, bucket: str, prefix: str | None) -> Callable[[], list[str]]:
    def stored() -> list[str]:
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if prefix is None:
                    out.append(key)
                elif key.startswith(prefix + "/"):
                    out.append(key[len(prefix) + 1:])
                else:
                    out.append(f"<outside the prefix>{key}")
        return sorted(out)

    return stored


def make_workspace(request: pytest.FixtureRequest, backend: str) -> Workspace:
    value = request.getfixturevalue
    if backend == "host":
        return Workspace(backend, value("host_broker"), _walk(value("host_root")))
    if backend in ("s3", "s3_root"):
        prefix = PREFIX if backend == "s3" else None
        broker = value("make_s3_broker")(prefix=prefix)
        return Workspace(backend, broker, _keys(value("s3_client"), value("s3_bucket"), prefix))
    version = {"nfs3": "3", "nfs41": "4.1"}[backend]
    broker = value("make_nfs_broker")(version)
    assert broker.mode == "direct", broker.mode
    return Workspace(backend, broker, _walk(value("nfs_workspace").backing))


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest) -> Workspace:
    return make_workspace(request, request.param)


@pytest.fixture(params=S3_BACKENDS)
def s3_ws(request: pytest.FixtureRequest) -> Workspace:
    return make_workspace(request, request.param)
