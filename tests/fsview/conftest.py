"""The backends the fsspec view is tested on: host, S3 under a prefix, S3 at the bucket root, NFS direct mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

VIEW_BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Any]] = {
    "host": lambda request: request.getfixturevalue("host_contract_broker"),
    "s3": lambda request: request.getfixturevalue("s3_contract_broker"),
    "s3-bucket-root": lambda request: request.getfixturevalue("make_s3_broker")(prefix=None),
    "nfs3": lambda request: request.getfixturevalue("nfs3_contract_broker"),
}


@pytest.fixture(params=list(VIEW_BACKENDS))
def view_broker(request: pytest.FixtureRequest) -> Any:
    """A fresh, empty workspace of each backend the view runs on."""
    return VIEW_BACKENDS[request.param](request)
