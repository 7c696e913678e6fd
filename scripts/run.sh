#!/usr/bin/env bash
# The main job on the embedded default: a host workspace in ./demo/workspace.
# It validates the configuration, writes, reads (whole and ranged), moves and sizes files with the brokers
# command, then serves the workspace API on SQLite (./demo/brokers.db) and reads the workspace's usage over HTTP.
# Usage: scripts/run.sh [--serve]   (--serve: keep the service running at http://127.0.0.1:8000/ afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-system >/dev/null
export PATH="$PWD/.venv/bin:$PATH"

demo="$PWD/demo"
mkdir -p "$demo/workspace"
cat > "$demo/workspace.json" <<JSON
{"version": "7", "broker": {"type": "host", "host_path": "$demo/workspace"}}
JSON
cfg="$demo/workspace.json"

set -x
brokers validate "$cfg"
printf 'id,value\n1,alpha\n2,beta\n3,gamma\n' > "$demo/input.csv"
brokers cp "$cfg" "$demo/input.csv" ws:in/
brokers ls "$cfg" -l
brokers cat "$cfg" in/input.csv --range 9-17
brokers mv "$cfg" in/input.csv out/result.csv
brokers cp "$cfg" ws:out/result.csv "$demo/result.csv"
brokers du "$cfg"
brokers volume "$cfg" --docker /workspace
set +x
cmp "$demo/input.csv" "$demo/result.csv" && echo "round trip: bytes identical"
