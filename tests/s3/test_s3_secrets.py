"""Distinctive keys never show up in repr, str, logs (DEBUG, botocore's included), errors, pickles or fs."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path

import fsspec
import pytest

import brokers
from brokers.errors import BrokerError
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.s3

KEYS = (ACCESS_KEY, SECRET_KEY)


def assert_clean(text: str | bytes, where: str) -> None:
    blob = text.encode() if isinstance(text, str) else text
    for key in KEYS:
        assert key.encode() not in blob, f"a key leaked into {where}"


def test_repr_str_describe_and_config(s3_broker, s3_config):
    for text in (repr(s3_broker), str(s3_broker), s3_broker.describe(), repr(s3_broker.config),
                 str(s3_broker.config), repr(s3_broker.s3_config), str(s3_broker.config.to_dict()),
                 repr(s3_broker.__dict__), repr(brokers.load_configuration(s3_config))):
        assert_clean(text, "a repr")


def test_fs_repr_and_pickle(s3_broker):
    fs = s3_broker.fs
    assert_clean(repr(fs) + str(fs), "the fs repr")
    s3_broker.write_bytes("p.txt", b"via fs")
    blob = pickle.dumps(fs)
    assert_clean(blob, "a pickled fs")
    assert pickle.loads(blob).cat_file("p.txt") == b"via fs"
    assert_clean(fs.to_json() + repr(fs.storage_options) + fs.unstrip_protocol("p.txt"), "fs storage options")
    assert fs.cat_file("p.txt") == b"via fs"  # the keys still authenticate
    rebuilt = fsspec.AbstractFileSystem.from_json(fs.to_json())
    assert rebuilt == fs and rebuilt.cat_file("p.txt") == b"via fs"  # same process: the same keys, by handle
    with fsspec.open(fs.unstrip_protocol("p.txt"), "rb") as f:
        assert f.read() == b"via fs"


def test_logs_at_debug_carry_no_key(s3_broker, s3_server, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)  # every logger, botocore's wire logs included
    s3_broker.write_bytes("a", b"1")
    s3_broker.read_bytes("a", 0, 1)
    list(s3_broker.list())
    s3_broker.move("a", "b")
    s3_broker.download("b", tmp_path / "b")
    s3_broker.fs.cat_file("b")
    s3_server.inject(lambda r: r.by_broker, status=403, code="SignatureDoesNotMatch")
    with pytest.raises(BrokerError):
        s3_broker.read_bytes("b")
    s3_server.clear_rules()
    assert "Sending http request" in caplog.text  # botocore's request log was captured...
    assert_clean(caplog.text, "the DEBUG log")  # ...with the access key id masked
    assert_clean("".join(r.getMessage() for r in caplog.records), "log records")


def test_exceptions_carry_no_key(make_s3_broker, s3_server):
    broker = make_s3_broker(bucket_name="brokers-no-such-bucket")
    errors = []
    for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
        s3_server.inject(lambda r: r.by_broker, status=403, code=code, times=1)
        with pytest.raises(BrokerError) as info:
            make_s3_broker().read_bytes("x")
        errors.append(info.value)
    with pytest.raises(BrokerError) as info:
        broker.write_bytes("x", b"1")
    errors.append(info.value)
    for exc in errors:
        assert_clean("".join(traceback.format_exception(exc)), "an exception and its chain")


def test_pickle_carries_no_key_and_works_in_the_same_process(s3_broker):
    s3_broker.write_bytes("p", b"pickled")
    _ = s3_broker.fs  # a cached fs must not travel either
    blob = pickle.dumps(s3_broker)
    assert_clean(blob, "a pickled broker")
    clone = pickle.loads(blob)
    assert clone.read_bytes("p") == b"pickled"
    assert clone.s3_config.credentials == s3_broker.s3_config.credentials  # found in the process registry
    assert repr(clone) == repr(s3_broker)


def test_unpickled_elsewhere_uses_the_credential_chain(s3_broker, s3_server):
    s3_broker.write_bytes("p", b"pickled")
    blob = pickle.dumps(s3_broker)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIACHAINKEY", "AWS_SECRET_ACCESS_KEY": "chain-secret",
           "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    code = ("import pickle, sys; b = pickle.loads(sys.stdin.buffer.read()); "
            "sys.stdout.write(b.read_bytes('p').decode())")
    mark = s3_server.mark()
    done = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == b"pickled"
    assert b"credential chain" in done.stderr  # the fallback is logged
    auth = [r.headers.get("authorization", "") for r in s3_server.since(mark) if r.by_broker]
    assert auth and all("Credential=AKIACHAINKEY/" in a for a in auth)


def test_validation_output_carries_no_key(s3_config):
    cfg = {**s3_config, "broker": {**s3_config["broker"], "bucket_name": "brokers-absent-bucket"}}
    assert_clean(repr(brokers.validate_configuration(cfg).to_dict()), "validation output")


def test_cli_output_carries_no_key(s3_config, s3_server, tmp_path):
    """The ``brokers`` command at its most talkative (-v: DEBUG logging, botocore's included)."""
    import json

    config = tmp_path / "ws.json"
    config.write_text(json.dumps({**s3_config, "broker": {**s3_config["broker"], "host_path": str(tmp_path)}}))
    absent = tmp_path / "absent.json"
    absent.write_text(json.dumps({**s3_config, "broker": {**s3_config["broker"], "bucket_name": "brokers-absent"}}))
    local = tmp_path / "local.txt"
    local.write_text("hello")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    runs = [["validate", str(config)], ["validate", "--json", str(absent)], ["cp", str(config), str(local), "ws:a"],
            ["ls", "-l", str(config)], ["cat", str(config), "a", "--range", "1-3"], ["mv", str(config), "a", "b"],
            ["du", "--json", str(config)], ["volume", str(config), "--docker", "/data"],
            ["cat", str(config), "missing"], ["ls", str(absent)], ["rm", str(config), "b"]]
    output = b""
    for argv in runs:
        done = subprocess.run([sys.executable, "-m", "brokers.cli", "-v", *argv], capture_output=True, env=env,
                              timeout=60)
        output += done.stdout + done.stderr
        assert b"Traceback" not in done.stderr, done.stderr.decode()[-1500:]
    assert b"Sending http request" in output and b"brokers-absent" in output
    assert_clean(output, "CLI output")


ENDPOINT_PASSWORD = "endpoint-pw-Zr8-do-not-leak"


def with_userinfo(endpoint: str) -> str:
    return endpoint.replace("://", f"://gateway:{ENDPOINT_PASSWORD}@", 1)


def test_endpoint_user_info_never_shows(s3_config, s3_server, caplog, tmp_path):
    """``https://user:password@host``: masked in every repr and output, never sent anywhere, still usable."""
    import json

    from tests.fixtures.s3 import free_port

    caplog.set_level(logging.DEBUG)
    cfg = {**s3_config, "broker": {**s3_config["broker"], "endpoint_url": with_userinfo(s3_server.endpoint)}}
    mark = s3_server.mark()
    broker = brokers.get_broker(cfg)
    broker.write_bytes("a", b"via the gateway")
    assert broker.read_bytes("a") == b"via the gateway"
    assert broker.fs.cat_file("a") == b"via the gateway"
    sent = s3_server.since(mark)
    assert sent and not [r for r in sent if ENDPOINT_PASSWORD in repr(r.headers) + r.path + r.query]
    loaded = brokers.load_configuration(cfg)
    assert loaded.to_dict(mask=False)["broker"]["endpoint_url"] == cfg["broker"]["endpoint_url"]  # kept as given
    assert loaded.to_dict()["broker"]["endpoint_url"] == s3_server.endpoint.replace("://", "://************@")
    outputs: list[str | bytes] = [
        repr(broker), repr(broker.config), str(broker.config), repr(broker.s3_config), repr(loaded),
        json.dumps(loaded.to_dict()), json.dumps(broker.config.to_dict()), repr(broker.__dict__),
        pickle.dumps(broker), pickle.dumps(broker.fs), repr(broker.fs.storage_options), broker.fs.to_json(),
        json.dumps(brokers.validate_configuration(cfg).to_dict())]
    unreachable = {**cfg, "broker": {**cfg["broker"], "endpoint_url": f"http://gateway:{ENDPOINT_PASSWORD}@127.0.0.1:"
                                                                      f"{free_port()}"}}
    invalid = {**cfg, "broker": {**cfg["broker"], "endpoint_url": f"http://gateway:{ENDPOINT_PASSWORD}@bad_host:1"}}
    for config in (unreachable, invalid):
        outputs.append(json.dumps(brokers.validate_configuration(config).to_dict()))
        with pytest.raises(BrokerError) as info:
            brokers.get_broker(config).read_bytes("a")
        outputs.append("".join(traceback.format_exception(info.value)))
    outputs.append(caplog.text)
    assert "Sending http request" in caplog.text
    config_file = tmp_path / "ws.json"
    config_file.write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for argv in (["validate", "--json", str(config_file)], ["ls", "-l", str(config_file)],
                 ["cat", str(config_file), "missing"]):
        done = subprocess.run([sys.executable, "-m", "brokers.cli", "-v", *argv], capture_output=True, env=env,
                              timeout=60)
        outputs += [done.stdout, done.stderr]
    leaked = [o[:300] for o in outputs
              if ENDPOINT_PASSWORD.encode() in (o if isinstance(o, bytes) else o.encode())]
    assert leaked == []
