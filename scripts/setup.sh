#!/usr/bin/env bash
# Set up a development environment: Debian packages for the real test servers (when root), and .venv.
# Usage: scripts/setup.sh [--no-system]
set -euo pipefail
cd "$(dirname "$0")/.."

# curl: the README's service examples, which tests/test_readme.py runs.
DEBIAN_PACKAGES=(fuse3 s3fs rpcbind nfs-ganesha nfs-ganesha-vfs libnfs-utils postgresql redis-server curl)

if [[ "${1:-}" != "--no-system" && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    # Node.js runs the npm s3rver server of the benchmarks (bench/package.json).
    command -v npm >/dev/null || missing+=(nodejs npm)
    if ((${#missing[@]})); then
        echo "setup: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=300 update -qq
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.brokers-installed
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" || constraints.txt -nt "$stamp" ]]; then
    echo "setup: installing Python packages into .venv"
    # constraints.txt pins a set known to resolve together (pip's resolver otherwise backtracks for minutes).
    # One pip call for everything: aiobotocore (under s3fs) pins botocore tightly, so boto3 must be
    # resolved together with it.
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev,nfs,service]'
    .venv/bin/python -m pip check
    touch "$stamp"
fi
