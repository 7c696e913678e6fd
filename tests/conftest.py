"""Shared test configuration: real-server fixtures are plugins under tests/fixtures/."""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.fixtures.host",
    "tests.fixtures.s3",
    "tests.fixtures.nfs",
    "tests.fixtures.service",
    "tests.fixtures.redis",
    "tests.fixtures.smtp",
]

REQUIRE_REAL_SERVERS = bool(os.environ.get("BROKERS_REQUIRE_REAL_SERVERS"))


def missing(component: str, why: str) -> None:
    """Skip a test whose real component is absent, or fail it when real servers are required (CI)."""
    message = f"{component} is not available: {why}"
    if REQUIRE_REAL_SERVERS:
        pytest.fail(message + " (BROKERS_REQUIRE_REAL_SERVERS is set)", pytrace=False)
    pytest.skip(message)


CONTRACT_BACKENDS = ["host", "s3", "nfs3", "nfs41"]


@pytest.fixture(params=CONTRACT_BACKENDS)
def any_broker(request: pytest.FixtureRequest):
    """A fresh, empty broker of every type: the contract suite runs once per backend.

    Each backend plugin provides a fixture named ``<backend>_contract_broker``.
    """
    try:
        return request.getfixturevalue(f"{request.param}_contract_broker")
    except pytest.FixtureLookupError:
        missing(request.param, "no fixture provides this backend yet")
