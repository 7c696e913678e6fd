#!/usr/bin/env bash
# Set up everything the tests need, then lint, type-check and run the whole test suite against real servers.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export BROKERS_REQUIRE_REAL_SERVERS="${BROKERS_REQUIRE_REAL_SERVERS:-1}"
.venv/bin/ruff check brokers tests bench
.venv/bin/mypy brokers
.venv/bin/lint-imports --no-cache
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
