"""``brokers serve`` as operators run it: a subprocess from the venv, answering within 2 s; the extra is optional."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import brokers
from brokers.errors import MissingDependency

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_answer(proc: subprocess.Popen, url: str, headers: dict, limit: float = 15.0) -> httpx.Response:
    started = time.monotonic()
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=5)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() - started > limit:
                raise AssertionError(f"no answer: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.01)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_and_time(tmp_path: Path, database: str) -> tuple[float, float]:
    """Start ``brokers serve``, check its first answers; return (seconds to the first answer, CPU seconds used)."""
    port = free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "BROKERS_SERVICE_TOKENS": "op-token,other"}
    env.pop("BROKERS_DATABASE_URL", None)
    argv = [str(BIN / "brokers"), "serve", "--port", str(port), "--log-level", "warning"]
    if database == "database_url":
        argv += ["--database-url", f"sqlite:///{tmp_path / 'elsewhere.db'}"]
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        response = first_answer(proc, f"http://127.0.0.1:{port}/v6/workspaces/", {"X-Access-Token": "op-token"})
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(proc.pid)
        assert response.status_code == 200
        assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}
        assert httpx.get(f"http://127.0.0.1:{port}/v6/workspaces/").status_code == 401
        docs = httpx.get(f"http://127.0.0.1:{port}/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]["/v6/workspaces/"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    default_db = tmp_path / "data" / "brokers" / "brokers.db"
    assert default_db.exists() == (database == "default")
    assert (tmp_path / "elsewhere.db").exists() == (database == "database_url")
    logged = (proc.stdout.read() if proc.stdout else "") + (proc.stderr.read() if proc.stderr else "")
    assert "op-token" not in logged
    return elapsed, cpu


@pytest.mark.parametrize("database", ["default", "database_url"])
def test_brokers_serve_answers_within_two_seconds(tmp_path, database) -> None:
    """Time from launching ``brokers serve`` (new database) to the first answer of ``GET /v6/workspaces/``.

    The budget is 2 s. Start-up is CPU-bound (about 1 s of CPU, mostly imports), so on a machine busier than its
    cores the budget stretches with the load, and the best of three launches counts.
    """
    runs = []
    for attempt in range(3):
        elapsed, cpu = start_and_time(tmp_path / str(attempt), database)
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        runs.append((elapsed, cpu, load))
        if elapsed < 2.0 * max(1.0, load):
            break
    print(f"brokers serve ({database}): " + ", ".join(
        f"first answer after {e:.2f} s ({c:.2f} s CPU, load {lo:.1f}/core)" for e, c, lo in runs))
    best = min(runs)
    assert best[0] < 2.0 * max(1.0, best[2]), runs


def test_importing_brokers_does_not_import_the_service_stack() -> None:
    code = ("import sys, brokers, brokers.cli, brokers.service, brokers.service.serve; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'sqlalchemy', 'alembic', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_extra_names_the_install_command(monkeypatch) -> None:
    import importlib.util

    from brokers.service import serve

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    with pytest.raises(MissingDependency, match=r"pip install 'brokers\[service\]'"):
        serve.main(["--port", "1"])
    assert isinstance(MissingDependency("x"), brokers.BrokerError)


def test_settings_from_the_command_line_and_environment(monkeypatch) -> None:
    from brokers.service.serve import build_parser, settings_from_args

    monkeypatch.setenv("BROKERS_SERVICE_TOKENS", "a, b,,")
    monkeypatch.setenv("BROKERS_SECRET_KEY", "k1,k2")
    settings = settings_from_args(build_parser().parse_args(["--token", "c", "--public-reads",
                                                             "--database-url", "postgres://u:pw@h/db"]))
    assert settings.tokens == ("c", "a", "b")
    assert settings.secret_keys == ("k1", "k2")
    assert settings.public_reads is True
    assert settings.url == "postgresql+psycopg://u:pw@h/db"
    assert "pw" not in repr(settings) and "k1" not in repr(settings) and "'c'" not in repr(settings)
