"""Secrets: every output channel of an S3 workspace, collected in one place, holds no secret.

The secrets: both keys, and the password in the ``endpoint_url``'s user info (``http://user:password@host``).
Channels (:data:`CHANNELS`, each asserted non-empty): repr, str and ``to_dict()`` of broker and configuration;
results; volumes; ``broker.fs``; pickles of the broker and of ``broker.fs``; exceptions (message, repr, chained
causes, formatted tracebacks) and their pickles; ``validate_configuration`` output (valid, invalid, unreachable,
with ``previous``); DEBUG logs of every logger during real operations, failures included; the CLI's stdout and
stderr (``--verbose``, in a subprocess so botocore logs at DEBUG); the HTTP service's responses (headers and
bodies) for a registered S3 workspace, errors and access checks included, its logs, and its database file.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest

import brokers
from tests.fixtures.s3 import REGION, free_port

ACCESS = "AKIARELIABLEQ7Z3XW9K"
SECRET = "rel/Secret+Key=Zq9xW4vT7uP2mN8b"
ENDPOINT_PASSWORD = "rel-endpoint-Pw7-K8s2"
SECRETS = (("access key", ACCESS), ("secret key", SECRET), ("endpoint password", ENDPOINT_PASSWORD))
CHANNELS = {"repr", "str", "to_dict", "results", "volume", "fs", "pickles", "exceptions", "exception pickles",
            "validate_configuration", "DEBUG logs", "CLI stdout", "CLI stderr", "service HTTP", "service logs",
            "service database"}


def forms(value: str) -> list[bytes]:
    """The key as it might leak: raw, URL-quoted, JSON-escaped, base64."""
    return [value.encode(), quote(value, safe="").encode(), json.dumps(value)[1:-1].encode(),
            base64.b64encode(value.encode())]


def leaks(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    found = []
    for name, value in SECRETS:
        if any(form in data for form in forms(value)):
            found.append(name)
    return found


@pytest.mark.timeout(120)
def test_no_output_channel_carries_a_key(s3_server, s3_bucket, tmp_path, monkeypatch):
    from botocore.retries import standard

    # botocore's standard retry waits up to 1 s, 2 s, 4 s... before giving up on an unreachable store: cut the
    # waits (not the attempts), the retries' log lines are what matters here.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    endpoint = s3_server.endpoint.replace("://", f"://gateway:{ENDPOINT_PASSWORD}@", 1)
    cfg = {"version": "7", "broker": {
        "type": "s3", "bucket_name": s3_bucket, "region_name": REGION, "endpoint_url": endpoint,
        "prefix": "ws", "host_path": str(tmp_path / "mnt"),
        "credentials": {"access_key_id": ACCESS, "secret_access_key": SECRET}}}
    channels: dict[str, list[str | bytes]] = {}

    def collect(channel: str, *texts: str | bytes) -> None:
        channels.setdefault(channel, []).extend(texts)

    # ---- DEBUG logs of every logger, for everything below
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        broker = brokers.get_broker(cfg)
        config = brokers.load_configuration(cfg)
        collect("repr", repr(broker), repr(config), repr(broker.config), repr(config.broker), repr(broker.__dict__),
                repr(vars(config)), repr(broker.s3_config))
        collect("str", str(broker), broker.describe(), str(config), str(config.broker))
        collect("to_dict", json.dumps(config.to_dict()), json.dumps(broker.config.to_dict()),
                repr(config.broker.to_dict()))
        broker.write_bytes("a/x.bin", b"hello" * 1000)
        broker.upload(__file__, "a/src.py")
        collect("results", repr(broker.info("a/x.bin")), repr(list(broker.list())), repr(broker.usage()),
                repr(broker.read_bytes("a/x.bin", 2, 9)))
        broker.move("a/x.bin", "a/y.bin")
        broker.download("a/y.bin", tmp_path / "dl.bin")
        with broker.open("a/y.bin") as f:
            f.read()
        collect("volume", repr(broker.volume), repr(broker.volume.docker_mount("/data")),
                json.dumps(broker.volume.kubernetes_volume("ws")), repr(broker.volume.mount_argv("/mnt/x")))

        # ---- broker.fs and pickles
        fs = broker.fs
        collect("fs", repr(fs), str(fs), repr(fs.ls("", detail=True)), repr(fs.storage_options), fs.to_json(),
                fs.unstrip_protocol("a"), repr(fs.find("", detail=True)))
        collect("pickles", pickle.dumps(broker), pickle.dumps(fs), pickle.dumps(pickle.loads(pickle.dumps(broker))))

        # ---- exceptions: missing file, wrong bucket, unreachable store, invalid configuration
        failures: list[BaseException] = []
        for attempt in (
            lambda: broker.read_bytes("missing"),
            lambda: broker.delete("missing"),
            lambda: brokers.get_broker({**cfg, "broker": {**cfg["broker"], "bucket_name": "brokers-absent-x"}})
            .write_bytes("a", b"x"),
            lambda: brokers.get_broker({**cfg, "broker": {**cfg["broker"], "endpoint_url":
                                                          f"http://u:{ENDPOINT_PASSWORD}@127.0.0.1:{free_port()}"}}
                                       ).read_bytes("a"),
            lambda: brokers.load_configuration({**cfg, "broker": {**cfg["broker"], "bucket_name": "Bad Name!",
                                                                  "surprise": SECRET}}),
            lambda: brokers.get_broker({**cfg, "broker": {**cfg["broker"], "region_name": 7}}),
        ):
            try:
                attempt()
            except Exception as exc:
                failures.append(exc)
        assert len(failures) == 6
        for exc in failures:
            collect("exceptions", str(exc), repr(exc), "".join(traceback.format_exception(exc)),
                    repr(getattr(exc, "errors", None)))
            try:
                collect("exception pickles", pickle.dumps(exc))
            except Exception as not_picklable:  # an unpicklable exception cannot leak through pickle
                collect("exception pickles", repr(not_picklable))

        # ---- validate_configuration
        bad = {**cfg, "broker": {**cfg["broker"], "bucket_name": "x"}}
        unreachable = {**cfg, "broker": {**cfg["broker"], "bucket_name": "brokers-absent-y"}}
        for c in (cfg, bad, unreachable, json.dumps(cfg)):
            result = brokers.validate_configuration(c, previous={"broker": {"type": "host", "host_path": "/x"}})
            collect("validate_configuration", repr(result), json.dumps(result.to_dict()))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    collect("DEBUG logs", stream.getvalue())
    assert "botocore" in stream.getvalue() and "Sending http request" in stream.getvalue()

    # ---- the CLI, verbose, as a user runs it
    cfg_file = tmp_path / "ws.json"
    cfg_file.write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    script = ("import sys\nfrom brokers.cli import main\nruns = " + repr([
        ["-v", "validate", str(cfg_file)], ["-v", "validate", "--json", str(cfg_file)],
        ["-v", "ls", "-l", str(cfg_file)], ["-v", "cat", str(cfg_file), "a/y.bin", "--range", "0-4"],
        ["-v", "cat", str(cfg_file), "missing"], ["-v", "du", "--json", str(cfg_file)],
        ["-v", "cp", str(cfg_file), "ws:a/y.bin", str(tmp_path / "cli.bin")],
        ["-v", "mv", str(cfg_file), "a/y.bin", "a/z.bin"], ["-v", "rm", str(cfg_file), "a/z.bin"],
        ["-v", "volume", str(cfg_file), "--kubernetes", "ws"], ["-v", "ls", str(cfg_file), "../escape"]])
        + "\nfor argv in runs:\n    print('exit', main(argv), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=90)
    assert b"Traceback" not in done.stderr, done.stderr.decode()[-2000:]
    assert done.stderr.count(b"exit ") == 11
    collect("CLI stdout", done.stdout)
    collect("CLI stderr", done.stderr)

    # ---- the HTTP service with the workspace registered (SQLite), checking access (its logs at DEBUG)
    from tests.fixtures.service import _serve

    service_logs = io.StringIO()
    handler = logging.StreamHandler(service_logs)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    database = tmp_path / "service.db"
    live, stop = _serve(f"sqlite:///{database}", check_access=True)
    try:
        responses = []
        created = live.client.post("/v6/workspaces/", json={"title": "Secret test", "configuration": cfg})
        responses.append(created)
        assert created.status_code == 201, created.text
        ws_id = created.json()["id"]
        responses += [
            live.client.get("/v6/workspaces/"), live.client.get(f"/v6/workspaces/{ws_id}/"),
            live.client.get("/v7/workspaces/"), live.client.get(f"/v7/workspaces/{ws_id}/"),
            live.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": {**cfg, "broker": {
                **cfg["broker"], "bucket_name": "x"}}}),
            live.client.patch(f"/v6/workspaces/{ws_id}/", json={"description": "changed"}),
            live.client.post("/v6/workspaces/validation/", json=cfg),
            live.client.post("/v6/workspaces/validation/", json={"configuration": cfg}),
            live.client.post("/v6/workspaces/", json={"title": "bad", "configuration": {**cfg, "broker": {
                **cfg["broker"], "bucket_name": "Bad Name!"}}}),
            live.client.post("/v6/workspaces/", json={"title": 5, "configuration": cfg, "extra": SECRET}),
            live.anonymous.get(f"/v6/workspaces/{ws_id}/"),
            live.client.get("/v6/workspaces/999999/"),
            live.client.get("/openapi.json"),
        ]
        live.app.state.service.jobs.scan([ws_id])
        live.wait_for(lambda: live.client.get(f"/v6/workspaces/{ws_id}/").json()["usage_measured"], timeout=30)
        responses.append(live.client.get(f"/v6/workspaces/{ws_id}/"))
        for r in responses:
            collect("service HTTP", f"{r.request.method} {r.request.url} -> {r.status_code}",
                    repr(dict(r.headers)), r.content)
        assert any(b"************" in r.content for r in responses), "the service shows masked keys"
        assert b"gateway" not in responses[-1].content and b"://************@" in responses[-1].content
    finally:
        stop()
        root.removeHandler(handler)
        root.setLevel(old_level)
    collect("service logs", service_logs.getvalue())
    assert "brokers.service" in service_logs.getvalue() and "Sending http request" in service_logs.getvalue()
    collect("service database", *(p.read_bytes() for p in tmp_path.glob("service.db*")))

    found = {channel: leaks(b"\n".join(t if isinstance(t, bytes) else t.encode("utf-8", "replace") for t in texts))
             for channel, texts in channels.items()}
    leaked = {channel: names for channel, names in found.items() if names}
    assert leaks(f"x{quote(SECRET, safe='')}y") == ["secret key"] and leaks(ACCESS) == ["access key"]  # detector works
    assert leaks(json.dumps({"e": f"http://u:{ENDPOINT_PASSWORD}@h"})) == ["endpoint password"]
    print(f"\nsecrets: {len(SECRETS)} secrets hunted in {len(channels)} channels, "
          f"{sum(len(t) for t in channels.values())} outputs: {sorted(channels)}")
    assert set(channels) == CHANNELS and all(any(len(t) for t in texts) for texts in channels.values())
    assert not leaked, f"secrets leaked through: {leaked}"
