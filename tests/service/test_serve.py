"""``brokers serve`` as operators run it: a subprocess from the venv that answers once it says it is ready."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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


def wait_until_ready(proc: subprocess.Popen) -> list[str]:
    """Read the service's log until uvicorn says it is listening; return the lines read (fail if it exits)."""
    lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "Uvicorn running on" in line:
            return lines
    raise AssertionError(f"brokers serve exited ({proc.wait()}) without saying it is ready: {''.join(lines)}")


def serve_and_check(tmp_path: Path, database: str) -> None:
    """Start ``brokers serve`` on a new database; once it says it is ready, its first answers must be right."""
    port = free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "BROKERS_SERVICE_TOKENS": "op-token,other"}
    env.pop("BROKERS_DATABASE_URL", None)
    argv = [str(BIN / "brokers"), "serve", "--port", str(port), "--log-level", "info"]
    if database == "database_url":
        argv += ["--database-url", f"sqlite:///{tmp_path / 'elsewhere.db'}"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        logged = wait_until_ready(proc)
        # No retry: the first request after "ready" is answered.
        response = httpx.get(f"http://127.0.0.1:{port}/v6/workspaces/", headers={"X-Access-Token": "op-token"},
                             timeout=30)
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
    logged += [proc.stdout.read() if proc.stdout else "", proc.stderr.read() if proc.stderr else ""]
    text = "".join(logged)
    assert "S3 endpoints it may contact: none but AWS's own" in text  # the deployment's reach, said at start
    assert "op-token" not in text


@pytest.mark.parametrize("database", ["default", "database_url"])
def test_brokers_serve_answers_once_it_says_it_is_ready(tmp_path, database) -> None:
    """``brokers serve`` from the venv, on a new database: the first request after its "ready" line succeeds."""
    serve_and_check(tmp_path, database)


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


def test_s3_reach_is_set_by_options_and_environment(monkeypatch, capsys) -> None:
    from brokers.service.serve import build_parser, main, settings_from_args
    from brokers.service.settings import Settings

    defaults = settings_from_args(build_parser().parse_args([]))
    assert (defaults.s3_endpoint_allow, defaults.s3_ambient_credentials) == ((), False)
    assert not defaults.access_policy.endpoint_allowed("http://10.0.0.5:9000")
    monkeypatch.setenv("BROKERS_S3_ENDPOINT_ALLOW", "https://*.s3.internal, http://10.0.0.5:9000")
    settings = settings_from_args(build_parser().parse_args(
        ["--s3-endpoint-allow", "http://127.0.0.1:*", "--s3-ambient-credentials"]))
    assert settings.s3_endpoint_allow == ("http://127.0.0.1:*", "https://*.s3.internal", "http://10.0.0.5:9000")
    assert settings.s3_ambient_credentials is True
    policy = settings.access_policy
    assert policy.ambient_credentials is True
    assert [policy.endpoint_allowed(u) for u in ("http://127.0.0.1:9", "https://a.s3.internal", "http://10.0.0.5:9000",
                                                 "http://10.0.0.5:9001", "http://169.254.169.254")] == [
        True, True, True, False, False]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--s3-endpoint-allow", "http://h/with/path"])
    assert exited.value.code == 2
    assert "endpoint pattern 'http://h/with/path' is not valid" in capsys.readouterr().err
    monkeypatch.setenv("BROKERS_S3_ENDPOINT_ALLOW", "10.0.0.5:9000")
    assert main(["--port", "1"]) == 2
    assert "BROKERS_S3_ENDPOINT_ALLOW: endpoint pattern '10.0.0.5:9000' is not valid" in capsys.readouterr().err
    monkeypatch.delenv("BROKERS_S3_ENDPOINT_ALLOW")
    monkeypatch.setenv("BROKERS_NFS_SERVER_ALLOW", "filer.internal, 10.0.0.7")
    settings = settings_from_args(build_parser().parse_args(["--nfs-server-allow", "*.nfs.internal"]))
    assert settings.nfs_server_allow == ("*.nfs.internal", "filer.internal", "10.0.0.7")
    assert [settings.access_policy.nfs_server_allowed(h) for h in ("a.nfs.internal", "10.0.0.7", "10.0.0.8")] == [
        True, True, False]
    assert Settings().access_policy.nfs_server_allowed("filer.internal") is False  # the default: none
    monkeypatch.setenv("BROKERS_NFS_SERVER_ALLOW", "nfs://filer")
    assert main(["--port", "1"]) == 2
    assert "BROKERS_NFS_SERVER_ALLOW: NFS server pattern 'nfs://filer' is not valid" in capsys.readouterr().err


def test_job_queue_and_mail_options(monkeypatch, capsys) -> None:
    from brokers.service.serve import build_parser, settings_from_args
    from brokers.service.worker import build_parser as worker_parser
    from brokers.service.worker import main as worker_main

    monkeypatch.delenv("BROKERS_QUEUE_URL", raising=False)
    monkeypatch.delenv("BROKERS_SMTP_URL", raising=False)
    defaults = settings_from_args(build_parser().parse_args([]))
    assert (defaults.queue_url, defaults.job_workers, defaults.smtp_url) == (None, 2, None)
    settings = settings_from_args(build_parser().parse_args([
        "--queue", "redis://:queue-pw@10.0.0.9:6379/2", "--job-workers", "0", "--job-lease", "12",
        "--smtp-url", "smtp://mailer:mail-pw@127.0.0.1:2525", "--database-url", "sqlite:////tmp/x/brokers.db"]))
    assert (settings.queue_url, settings.job_workers, settings.job_lease) == (
        "redis://:queue-pw@10.0.0.9:6379/2", 0, 12.0)
    assert settings.data_folder == Path("/tmp/x")
    assert "queue-pw" not in repr(settings) and "mail-pw" not in repr(settings)
    monkeypatch.setenv("BROKERS_QUEUE_URL", "redis://127.0.0.1:6390/0")
    assert settings_from_args(build_parser().parse_args([])).queue_url == "redis://127.0.0.1:6390/0"
    worker = settings_from_args(worker_parser().parse_args([]))
    assert (worker.queue_url, worker.job_workers, worker.usage_interval) == ("redis://127.0.0.1:6390/0", 4, 0.0)
    for bad, words in ((["--queue", "ftp://h/q"], "the job queue URL must start with redis://"),
                       (["--job-lease", "0"], "is not a positive number of seconds"),
                       (["--smtp-url", "http://mail"], "the SMTP URL must look like smtp://")):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(bad)
        assert exited.value.code == 2 and words in capsys.readouterr().err
    assert worker_main(["--job-workers", "0"]) == 2
    assert "--job-workers must be at least 1" in capsys.readouterr().err
