"""Servers and peer tools the benchmarks need, started on loopback and stopped afterwards.

- :class:`MotoServer`: moto's S3 app in this process behind the test suite's recording middleware
  (``tests.fixtures.s3.Recorder``), so a case can count the body bytes the server sent per request.
- :class:`S3rver`: the npm ``s3rver`` 3.7.1 (``bench/package.json``), a faster server that keeps objects on
  disk and serves ranged GETs without reading the whole object.
- :class:`Ganesha`: NFS-Ganesha, the same server class the NFS fixtures use (``tests.fixtures.nfs``).
- :func:`aws_cli`: the AWS CLI, from a private venv ``bench/.venv-awscli`` (its botocore pin conflicts with
  the project's).

Missing pieces are installed on first use where that needs only a package client (``npm ci`` for s3rver,
``pip install awscli`` into the private venv) unless ``BROKERS_BENCH_NO_INSTALL`` is set; otherwise
:class:`Unavailable` says what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AWSCLI_VENV = HERE / ".venv-awscli"
S3RVER_BIN = HERE / "node_modules" / "s3rver" / "bin" / "s3rver.js"
REGION = "us-east-1"

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


class Unavailable(RuntimeError):
    """A server or peer tool the benchmark needs is missing and could not be installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _may_install() -> bool:
    return not os.environ.get("BROKERS_BENCH_NO_INSTALL")


class S3Endpoint:
    """Where an S3 server listens and the keys it takes."""

    name = "s3"
    endpoint: str
    access_key: str
    secret_key: str

    def boto3_client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", s3={"addressing_style": "path"},
                          **config))

    def broker_config(self, bucket: str, prefix: str | None = None) -> dict[str, Any]:
        broker: dict[str, Any] = {
            "type": "s3", "bucket_name": bucket, "region_name": REGION, "endpoint_url": self.endpoint,
            "credentials": {"access_key_id": self.access_key, "secret_access_key": self.secret_key}}
        if prefix:
            broker["prefix"] = prefix
        return {"version": "7", "broker": broker}

    def s3fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(key=self.access_key, secret=self.secret_key, endpoint_url=self.endpoint,
                                 client_kwargs={"region_name": REGION}, skip_instance_cache=True,
                                 use_listings_cache=False)

    def obstore(self, bucket: str) -> Any:
        from obstore.store import S3Store

        return S3Store(bucket, endpoint=self.endpoint, access_key_id=self.access_key,
                       secret_access_key=self.secret_key, region=REGION, virtual_hosted_style_request=False,
                       client_options={"allow_http": True})

    def aws_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        return env

    def new_bucket(self, stem: str) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        self.boto3_client().create_bucket(Bucket=name)
        return name


class MotoServer(S3Endpoint):
    """moto in this process (werkzeug, threaded) behind the recording middleware of the test fixtures."""

    name = "moto"
    access_key = "AKIABROKERSBENCH0001"
    secret_key = "brokers-bench-secret"

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.recorder: Any = None
        self._old_tempdir: str | None = None

    def start(self) -> None:
        try:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
            from werkzeug.serving import make_server

            from tests.fixtures.s3 import Recorder
        except ImportError as exc:
            raise Unavailable(f"moto server: cannot import {exc.name} (pip install 'moto[s3]' flask flask-cors)"
                              ) from exc
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._old_tempdir = tempfile.tempdir
        spool = self._tmp / "moto-tmp"
        spool.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(spool)
        self.recorder = Recorder(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, self.recorder, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-moto", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"

    def mark(self) -> int:
        with self.recorder.lock:
            return len(self.recorder.requests)

    def since(self, mark: int) -> list[Any]:
        with self.recorder.lock:
            return list(self.recorder.requests[mark:])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join(10)
            tempfile.tempdir = self._old_tempdir


class MotoProcess(S3Endpoint):
    """moto's server as its own process (``moto_server``): it does not share this process's GIL."""

    name = "moto"
    access_key = MotoServer.access_key
    secret_key = MotoServer.secret_key

    def __init__(self, tmp: Path, seed: tuple[str, int] | None = None) -> None:
        """``seed=(bucket, count)``: the server starts with that bucket holding :func:`tree_keys` objects."""
        self._tmp = tmp / "moto-process"
        self.proc: subprocess.Popen[bytes] | None = None
        self.seed = seed

    def start(self) -> None:
        try:
            import flask  # noqa: F401
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise Unavailable(f"moto server: cannot import {exc.name} (pip install 'moto[s3]' flask flask-cors)"
                              ) from exc
        self._tmp.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = dict(os.environ, TMPDIR=str(self._tmp))
        self.log = self._tmp / "moto.log"
        with open(self.log, "wb") as log:  # werkzeug logs every request: never to a pipe nobody reads
            argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
            if self.seed is not None:  # filled in the server's own memory: 20,000 PUTs would take minutes
                argv = [sys.executable, "-m", "bench.servers", "seeded-moto", str(port), self.seed[0],
                        str(self.seed[1])]
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=HERE.parent)
        self.endpoint = f"http://127.0.0.1:{port}"
        _wait_http(self.endpoint, self.proc, "moto server", self.log, timeout=120)

    def stop(self) -> None:
        _stop(self.proc)


def _wait_http(endpoint: str, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            err = log.read_text(errors="replace") if log.exists() else ""
            raise Unavailable(f"{what} exited with {proc.returncode}: {err.strip()[-500:]}")
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers (403 without a signature)
        except OSError:
            if time.monotonic() > deadline:
                _stop(proc)
                raise Unavailable(f"{what} did not answer within {timeout:.0f} s") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM a server, wait ``timeout`` seconds for it to exit, then kill it."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_s3rver() -> Path:
    """Return s3rver's entry script, running ``npm ci --prefix bench`` first if it is not installed."""
    if S3RVER_BIN.exists():
        return S3RVER_BIN
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("s3rver: node and npm are not installed (apt-get install nodejs npm)")
    if not _may_install():
        raise Unavailable("s3rver: not installed (npm ci --prefix bench)")
    result = subprocess.run([npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0 or not S3RVER_BIN.exists():
        raise Unavailable(f"s3rver: npm ci --prefix bench failed: {result.stderr.strip()[-500:]}")
    return S3RVER_BIN


class S3rver(S3Endpoint):
    """npm s3rver 3.7.1 as a subprocess (keys are fixed to S3RVER/S3RVER)."""

    name = "s3rver"
    access_key = "S3RVER"
    secret_key = "S3RVER"

    def __init__(self, tmp: Path) -> None:
        self._dir = tmp / "s3rver"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        script = ensure_s3rver()
        node = shutil.which("node")
        assert node is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = dict(os.environ)
        # Without the legacy provider, node >= 17 fails listings of more than 1,000 keys with a 500.
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
        self.log = self._dir.parent / "s3rver.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([node, str(script), "-d", str(self._dir), "-a", "127.0.0.1", "-p",
                                          str(port), "--silent"], env=env, stdout=log, stderr=log)
        self.endpoint = f"http://127.0.0.1:{port}"
        _wait_http(self.endpoint, self.proc, "s3rver", self.log)

    def stop(self) -> None:
        _stop(self.proc)


class Ganesha:
    """NFS-Ganesha on loopback: the fixtures' :class:`tests.fixtures.nfs.GaneshaServer`."""

    def __init__(self, tmp: Path) -> None:
        self._base = tmp / "ganesha"
        self.server: Any = None

    def start(self) -> None:
        try:
            from tests.fixtures.nfs import GaneshaServer, ServerUnavailable
        except ImportError as exc:
            raise Unavailable(f"NFS-Ganesha: cannot import the fixture ({exc})") from exc
        self._base.mkdir(parents=True, exist_ok=True)
        self.server = GaneshaServer(self._base)
        try:
            self.server.start()
        except ServerUnavailable as exc:
            self.server = None
            raise Unavailable(f"NFS-Ganesha: {exc}") from exc

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def aws_cli() -> list[str]:
    """Return the argv prefix of the AWS CLI (v1) from ``bench/.venv-awscli``, creating that venv if needed.

    The CLI pins botocore exactly, and no release pins the botocore in constraints.txt, so it lives in its own
    venv (created with this interpreter; ``pip install awscli``).
    """
    aws = AWSCLI_VENV / "bin" / "aws"
    if aws.exists():
        return [str(aws)]
    if not _may_install():
        raise Unavailable(f"AWS CLI: {aws} is missing (python -m venv {AWSCLI_VENV}; pip install awscli)")
    base = getattr(sys, "_base_executable", sys.executable)
    for argv in ([base, "-m", "venv", str(AWSCLI_VENV)],
                 [str(AWSCLI_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "awscli"]):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(AWSCLI_VENV, ignore_errors=True)
            raise Unavailable(f"AWS CLI: {' '.join(argv[:3])} failed: {result.stderr.strip()[-500:]}")
    return [str(aws)]


def aws_cli_version() -> str:
    try:
        out = subprocess.run([*aws_cli(), "--version"], capture_output=True, text=True, check=False)
        return (out.stdout or out.stderr).split()[0]
    except (Unavailable, OSError, IndexError):
        return "n/a"


@contextlib.contextmanager
def running(server: Any) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tree_keys(count: int, prefix: str = "") -> list[tuple[str, int]]:
    """``count`` keys in nested prefixes (``p/q/r/file``) and their sizes (0..96 bytes)."""
    return [(f"{prefix}p{i % 10}/q{(i // 10) % 20}/r{(i // 200) % 10}/f{i:06d}", i % 97) for i in range(count)]


def _serve_seeded_moto(port: int, bucket: str, count: int) -> None:
    """Fill moto's in-memory backend with a bucket of :func:`tree_keys`, then serve it (in this process)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.s3.models import s3_backends
    from werkzeug.serving import make_server

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, REGION)
    for key, size in tree_keys(count):
        backend.put_object(bucket, key, b"x" * size)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=True).serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["seeded-moto"]:
    _serve_seeded_moto(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
