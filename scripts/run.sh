#!/usr/bin/env bash
# The main job on the embedded default: a host workspace in ./demo/workspace.
# It validates the configuration, writes, reads (whole and ranged), moves and sizes files with the brokers
# command, then serves the workspace API on SQLite (./demo/brokers.db), reads the workspace's usage over HTTP and
# runs a usage-scan job on the service's embedded job queue.
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

# The workspace service on SQLite: register the workspace, then read its used/total size over HTTP.
port="${BROKERS_DEMO_PORT:-8000}"
token="demo-token"
url="http://127.0.0.1:$port"
brokers serve --port "$port" --database-url "sqlite:///$demo/brokers.db" --token "$token" \
    --usage-interval 2 --log-level warning &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
python - "$url" "$token" "$cfg" <<'PY'
import json, sys, time, urllib.error, urllib.request

url, token, cfg = sys.argv[1:]

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"X-Access-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")

for _ in range(100):  # the service starts in about a second
    try:
        call("GET", "/v6/workspaces/")
        break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.1)
config = json.load(open(cfg))
status, found = call("GET", "/v6/workspaces/?name=demo")
if not found["results"]:
    status, created = call("POST", "/v6/workspaces/", {"title": "Demo", "configuration": config})
    print(f"POST /v6/workspaces/ -> {status}: workspace {created['name']!r} id {created['id']}")
for _ in range(100):
    status, listing = call("GET", "/v6/workspaces/?name=demo")
    ws = listing["results"][0]
    if ws["used_size"] is not None:
        break
    time.sleep(0.1)
print(f"GET /v6/workspaces/ -> {status}: used_size={ws['used_size']} total_size={ws['total_size']} "
      f"(measured {ws['usage_measured']})")
# A usage scan job (the management API): per-folder bytes and files, its status history and log.
status, posted = call("POST", f"/workspaces/{ws['id']}/jobs", {"kind": "usage_scan"})
job = posted["workspace_job"]
for _ in range(200):
    status, got = call("GET", f"/workspaces/{ws['id']}/jobs/{job['id']}")
    job = got["workspace_job"]
    if job["status"] not in ("waiting", "running"):
        break
    time.sleep(0.05)
stats = job["stats"]
print(f"usage_scan job {job['id']} {job['status']}: data_volumes={stats.get('data_volumes')} "
      f"files_count={stats.get('files_count')} statuses={list(stats['statuses_history'])}")
status, logs = call("GET", f"/workspaces/{ws['id']}/jobs/{job['id']}/logs")
for line in logs["workspace_logs"]:
    print(f"  [{line['level']}] {line['text']}")
assert job["status"] == "finished", job
PY
if [[ "${1:-}" == "--serve" ]]; then
    echo "serving $url (token: $token; docs at $url/docs); Ctrl-C stops"
    wait $server
fi
