"""fsspec's own conformance suite (``fsspec.tests.abstract``) against ``broker.fs`` on every backend.

Each backend runs the suite at the workspace root and in a sub-folder: host, S3 under a prefix, S3 at the bucket
root, and NFS in direct mode (the userspace client). Workspaces hold files only, so
``supports_empty_directories`` is False: the suite then expects no empty folder to survive a copy.
"""

from __future__ import annotations

import posixpath
from typing import Any

import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests

from tests.fsview.conftest import VIEW_BACKENDS

PLACES = [(backend, path) for backend in VIEW_BACKENDS for path in ("", "sub/folder")
          if not (backend == "s3-bucket-root" and path)]
"""Where the suite runs: every backend at its workspace root and in a sub-folder. S3 at the bucket root runs at
the root only: in a sub-folder its keys (``sub/folder/...``) have the shape of a prefixed workspace's, which the
``s3`` runs cover, and each S3 run costs minutes of the test budget."""


class BrokerFixtures(AbstractFixtures):  # type: ignore[misc]
    """The suite's fixtures for one broker's view."""

    @pytest.fixture(params=PLACES, ids=[f"{b}-{'sub-folder' if p else 'root'}" for b, p in PLACES])
    def place(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        return request.param  # type: ignore[no-any-return]

    @pytest.fixture
    def fs(self, request: pytest.FixtureRequest, place: tuple[str, str]) -> Any:
        return VIEW_BACKENDS[place[0]](request).fs

    @pytest.fixture
    def fs_join(self) -> Any:
        return posixpath.join

    @pytest.fixture
    def fs_path(self, place: tuple[str, str]) -> str:
        return place[1]

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestCopy(BrokerFixtures, AbstractCopyTests):  # type: ignore[misc]
    pass


class TestGet(BrokerFixtures, AbstractGetTests):  # type: ignore[misc]
    pass


class TestPut(BrokerFixtures, AbstractPutTests):  # type: ignore[misc]
    pass


class TestOpen(BrokerFixtures, AbstractOpenTests):  # type: ignore[misc]
    pass


class TestPipe(BrokerFixtures, AbstractPipeTests):  # type: ignore[misc]
    pass
