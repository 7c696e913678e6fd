"""Fuzzing beyond tests/test_configuration.py and tests/test_cli.py.

Configuration: valid configurations of each broker type mutated field by field with hostile values (wrong
types, huge numbers, NaN, NUL, lone surrogates, very long or deeply nested values, unknown fields), given as
dict, JSON text, bytes or a file, with a fuzzed ``previous``. ``validate_configuration`` must answer without its
``internal_error`` safety net (that would be a crash it swallowed), agree with ``load_configuration``, and every
valid result must build a broker and render its volume (docker, kubernetes, mount) without an exception;
docker's ``--mount`` value must parse back (CSV) to the same source and target.

CLI: every command with fuzzed arguments (NUL, surrogates, traversal, options in odd places, ``--verbose``)
against host and S3 workspaces and against fuzzed configuration files: a documented exit status (0/1/2/3), no
traceback and no "unexpected error", a failure's last line is ``brokers...: reason``, and nothing outside the
workspace changes.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import logging
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import brokers
from brokers.cli import main

BASES = [
    {"version": "7", "broker": {"type": "host", "host_path": "/data/ws", "total_size": 10 ** 9}},
    {"version": "7", "broker": {"type": "nfs", "nfs_path": "fileserver:/exports/ws", "nfs_version": "4.1",
                                "nfs_port": 2049, "mount_port": 20048, "mount_options": ["hard", "nfsvers=4.1"],
                                "host_path": "/mnt/ws", "total_size": 5}},
    {"version": "6", "broker": {"type": "s3", "bucket_name": "my-bucket", "region_name": "us-east-1",
                                "endpoint_url": "http://127.0.0.1:1", "prefix": "team/ws",
                                "credentials": {"access_key_id": "AKIAFUZZ", "secret_access_key": "fuzz-secret"},
                                "host_path": "/mnt/b"}},
]

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10 ** 30, -(10 ** 30), -1, 0, 2 ** 63, 2 ** 64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "\x00", "\ud800", "a\x00b", "/", "//", "/a,b", '/a"b', "/a\nb", "x" * 5000,
                     "/" + "é" * 3000, "..", "../..", "http://[::1", "http://user:pw@127.0.0.1:1", "ftp://x",
                     "s3://b", "1e3", "0x10", "4.2", "3", "4.1", "host", "nfs", "s3", "fileserver:/x,y",
                     "[::1]:/export", "a:b:/c", "-o", "$(reboot)", "`id`", "%2e%2e", "\u202e", "\ufeff"]),
    st.text(max_size=30),
    st.lists(st.text(max_size=8), max_size=4),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    st.builds(lambda n: json.loads("[" * n + "]" * n), st.integers(1, 900)),
    st.builds(lambda: {"$ref": "#"}),  # a fresh dict per draw: mutations must not change a shared one
)


@st.composite
def mutated(draw, bases=tuple(BASES)):
    config = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["top", "broker", "broker", "broker", "credentials"]))
        broker = config.get("broker")
        target = {"top": config, "broker": broker,
                  "credentials": broker.get("credentials") if isinstance(broker, dict) else None}[where]
        if not isinstance(target, dict):
            continue
        key = draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), st.text(max_size=10)))
        action = draw(st.sampled_from(["set", "set", "delete"]))
        if action == "delete" and key != "endpoint_url":
            target.pop(key, None)
        elif key != "endpoint_url":  # never point a fuzzed configuration at a real network address
            target[key] = copy.deepcopy(draw(HOSTILE))
    return config


def as_form(config, form: str, tmp_path: Path):
    if form == "dict":
        return config
    text = json.dumps(config, allow_nan=True)
    if form == "json":
        return text
    if form == "bytes":
        return text.encode("utf-8", "surrogatepass")
    path = tmp_path / "fuzzed.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


class _Swallowed(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_volume(broker) -> None:
    volume = broker.volume
    if volume is None:
        return
    target = "/job/data"
    mount = volume.docker_mount(target)
    fields = next(csv.reader(io.StringIO(mount)))
    pairs = [f.split("=", 1) for f in fields]
    keys = [p[0] for p in pairs]
    assert keys.count("target") == 1, f"docker --mount {mount!r} parses to {fields}"
    assert dict(p for p in pairs if len(p) == 2)["target"] == target, mount
    if volume.kind == "bind":
        assert keys.count("source") == 1 and dict(p for p in pairs if len(p) == 2)["source"] == volume.source, (
            f"docker --mount {mount!r} parses to {fields}, not source={volume.source!r}")
    json.dumps(volume.kubernetes_volume("ws"))
    argv = volume.mount_argv(target)
    assert argv[-1] == target and all(isinstance(a, str) for a in argv)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(config=mutated(), form=st.sampled_from(["dict", "json", "bytes", "file"]),
       previous=st.one_of(st.none(), mutated(), HOSTILE))
def test_mutated_configurations(tmp_path, config, form, previous):
    value = as_form(config, form, tmp_path)
    swallowed = _Swallowed()
    logging.getLogger("brokers").addHandler(swallowed)
    try:
        result = brokers.validate_configuration(value, previous=previous, check_access=False)
    finally:
        logging.getLogger("brokers").removeHandler(swallowed)
    data = result.to_dict()
    json.dumps(data)
    names = [e["name"] for e in data["errors"]]
    assert "internal_error" not in names, (data, [r.getMessage() for r in swallowed.records])
    assert not swallowed.records, [r.getMessage() for r in swallowed.records]
    assert data["is_valid"] == (not data["errors"])
    for item in data["errors"] + data["warnings"]:
        assert set(item) == {"name", "description", "path"}
        assert all(isinstance(v, str) for v in item.values())
    if not data["is_valid"]:
        with pytest.raises(brokers.InvalidConfiguration):
            brokers.load_configuration(value)
        return
    brokers.load_configuration(value)
    try:
        broker = brokers.get_broker(value)
    except brokers.MissingDependency:
        return
    repr(broker)
    check_volume(broker)


@settings(max_examples=40, deadline=None)
@given(config=mutated(bases=(BASES[2],)))
def test_mutated_configurations_with_access_check(config):
    """The access check reaches only a closed loopback port here: it must warn, never raise."""
    from unittest import mock

    from botocore.retries import standard

    broker = config.get("broker")
    assume(isinstance(broker, dict) and broker.get("type") == "s3")
    with mock.patch.object(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01):
        data = brokers.validate_configuration(config, check_access=True).to_dict()
    assert "internal_error" not in [e["name"] for e in data["errors"]]
    if data["is_valid"]:
        assert "bucket_access" in [w["name"] for w in data["warnings"]]


@pytest.mark.parametrize("host_path", ["/data/a,b", '/data/"q"', "/data/x,target=/etc", "/data/x,readonly=false"])
def test_docker_mount_quotes_awkward_sources(host_path):
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": host_path}})
    check_volume(broker)


# ---------------------------------------------------------------------------------------------------- CLI
CLI_ARG = st.one_of(
    st.sampled_from(["ws:", "ws:a", "ws:../x", "ws:/etc/passwd", "ws:a\x00b", "ws:\ud800", "-", "--json", "--range",
                     "1-2", "-5-", "5-1", "--all", "..", "/", "--docker", "--kubernetes", "--mount", "-l",
                     "--no-recursive", "--missing-ok", "--partial", "--progress", "--bytes", "--offline", "--check-access",
                     "--previous", "a\x00", "\ud800", "x" * 300, "a/../../b", "in/f.txt", "ws:in/f.txt", "-v",
                     "--verbose", "--", "--help"]),
    st.text(max_size=12),
)
COMMANDS = ["validate", "ls", "cat", "cp", "mv", "rm", "du", "volume"]


def tree(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p)] = (p.is_symlink(), p.is_file() and p.read_bytes())
    return out


def run_cli(argv) -> None:
    """Run the CLI in-process with the standard streams of a real process: stdout strict UTF-8 (the worst case,
    a UTF-8 locale), stderr ``backslashreplace`` (Python's default for stderr).

    botocore's retry waits are cut to 10 ms (fuzzed S3 configurations point at a closed loopback port).
    """
    from unittest import mock

    from botocore.retries import standard

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    fast = mock.patch.object(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    code = None
    with fast, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.suppress(SystemExit):
        code = main(argv)  # --help exits 0 through argparse
        assert code in (0, 1, 2, 3), (argv, code)
    err.flush()
    text = err.buffer.getvalue().decode()  # type: ignore[attr-defined]
    assert "Traceback" not in text and "unexpected error" not in text, (argv, text[-1500:])
    lines = [line for line in text.split("\n") if line.strip()]  # a progress bar ends with its own newline
    if code == 2 or (code == 1 and "validate" not in argv):  # an invalid configuration: validate's answer
        assert lines and lines[-1].startswith("brokers"), (argv, text[-1500:])


@pytest.fixture
def cli_arena(tmp_path, monkeypatch):
    ws, sandbox, outside = tmp_path / "ws", tmp_path / "sandbox", tmp_path / "outside"
    for d in (ws, sandbox, outside):
        d.mkdir()
    (ws / "in").mkdir()
    (ws / "in" / "f.txt").write_bytes(b"hello")
    (outside / "secret").write_bytes(b"keep")
    (ws / "link_out").symlink_to(outside)
    cfg = tmp_path / "host.json"
    cfg.write_text(json.dumps({"broker": {"type": "host", "host_path": str(ws)}}))
    monkeypatch.chdir(sandbox)  # relative local paths of cp land in the sandbox
    return cfg, ws, sandbox, outside


def _local_args(command: str, args: list[str]) -> list[str]:
    """Local (non ws:) paths of cp/mv could name any file of this machine: keep them relative to the sandbox."""
    if command not in ("cp",):
        return args
    return [a if a.startswith(("ws:", "-")) else a.lstrip("/").replace("..", "__") or "x" for a in args]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), args=st.lists(CLI_ARG, max_size=5), verbose=st.booleans())
def test_cli_fuzz_host(cli_arena, command, args, verbose):
    cfg, ws, _sandbox, outside = cli_arena
    if command == "rm" and "--all" in args:
        args = [a for a in args if a != "--all"]
    args = _local_args(command, args)
    before = tree(outside)
    argv = (["-v"] if verbose else []) + [command] + ([] if command == "validate" else [str(cfg)]) + args
    if not (ws / "in" / "f.txt").exists():
        (ws / "in" / "f.txt").write_bytes(b"hello")
    run_cli(argv)
    assert tree(outside) == before
    assert sorted(os.listdir(cfg.parent)) == ["host.json", "outside", "sandbox", "ws"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), args=st.lists(CLI_ARG, max_size=4))
def test_cli_fuzz_s3(s3_config, s3_client, s3_bucket, tmp_path, monkeypatch, command, args):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "s3.json"
    if not cfg.exists():
        cfg.write_text(json.dumps(s3_config))
        s3_client.put_object(Bucket=s3_bucket, Key="outside.txt", Body=b"keep")
        s3_client.put_object(Bucket=s3_bucket, Key="ws/in/f.txt", Body=b"hello")
    if command == "rm" and "--all" in args:
        args = [a for a in args if a != "--all"]
    args = _local_args(command, args)
    run_cli([command] + ([] if command == "validate" else [str(cfg)]) + args)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert [k for k in keys if not k.startswith("ws/")] == ["outside.txt"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=mutated(), command=st.sampled_from(COMMANDS), args=st.lists(CLI_ARG, max_size=3))
def test_cli_fuzzed_configuration_files(tmp_path, monkeypatch, config, command, args):
    monkeypatch.chdir(tmp_path)
    broker = config.get("broker")
    if isinstance(broker, dict) and broker.get("type") == "host":
        assume(not isinstance(broker.get("host_path"), str) or broker["host_path"] in ("/data/ws",))
    cfg = tmp_path / "fuzzed.json"
    cfg.write_bytes(json.dumps(config, allow_nan=True).encode("utf-8", "surrogatepass"))
    if command == "rm":
        args = [a for a in args if a != "--all"]
    args = _local_args(command, args)
    run_cli([command, str(cfg), *args])
