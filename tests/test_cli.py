"""The ``brokers`` command: every subcommand, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.cli import main
from brokers.cli.common import human_size


@pytest.fixture
def cfg(tmp_path, host_root):
    path = tmp_path / "ws.json"
    path.write_text(json.dumps({"broker": {"type": "host", "host_path": str(host_root)}}))
    return str(path)


def run(capsysbinary, *args):
    code = main(list(args))
    out, err = capsysbinary.readouterr()
    return code, out.decode(), err.decode()


def test_validate(capsysbinary, cfg, tmp_path):
    assert run(capsysbinary, "validate", cfg) == (0, "valid\n", "")
    code, out, _ = run(capsysbinary, "validate", cfg, "--json")
    assert code == 0 and json.loads(out) == {"is_valid": True, "errors": [], "warnings": []}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"broker": {"type": "host", "host_path": "rel"}}))
    code, out, _ = run(capsysbinary, "validate", str(bad))
    assert code == 1
    assert out == "invalid\n  error invalid_value at /broker/host_path: broker.host_path must be an absolute path " \
                  "(starting with '/')\n"
    prev = tmp_path / "prev.json"
    prev.write_text(json.dumps({"broker": {"type": "nfs", "nfs_path": "srv:/x"}}))
    code, out, _ = run(capsysbinary, "validate", cfg, "--previous", str(prev), "--json")
    assert code == 0 and json.loads(out)["warnings"][0]["name"] == "broker_type"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    code, out, _ = run(capsysbinary, "validate", str(broken))
    assert code == 1 and "invalid_json" in out
    code, _, err = run(capsysbinary, "validate", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err


def test_usage_errors_exit_2(capsysbinary, cfg):
    for args in ([], ["frobnicate"], ["cat", cfg], ["cat", cfg, "a", "--range", "x-y"], ["cat", cfg, "a", "--range", "9-3"],
                 ["volume", cfg], ["cp", cfg, "a", "b"], ["cp", cfg, "ws:a", "ws:b"], ["rm", cfg]):
        code, _, err = run(capsysbinary, *args)
        assert code == 2, args
        assert err.count("\n") == 1 and "Traceback" not in err


def test_file_commands(capsysbinary, cfg, tmp_path, host_root):
    local = tmp_path / "local.txt"
    local.write_bytes(b"hello, workspace\n")
    assert run(capsysbinary, "cp", cfg, str(local), "ws:in/") == (0, "", "")
    assert (host_root / "in" / "local.txt").read_bytes() == b"hello, workspace\n"
    assert run(capsysbinary, "ls", cfg) == (0, "in/local.txt\n", "")
    code, out, _ = run(capsysbinary, "ls", cfg, "in", "-l")
    assert code == 0 and out.split()[0] == "17" and out.endswith("in/local.txt\n")
    assert run(capsysbinary, "cat", cfg, "in/local.txt") == (0, "hello, workspace\n", "")
    assert run(capsysbinary, "cat", cfg, "in/local.txt", "--range", "7-16") == (0, "workspace", "")
    assert run(capsysbinary, "cat", cfg, "in/local.txt", "--range", "7-") == (0, "workspace\n", "")
    assert run(capsysbinary, "mv", cfg, "in/local.txt", "out/moved.txt") == (0, "", "")
    assert run(capsysbinary, "cp", cfg, "ws:out/moved.txt", str(tmp_path)) == (0, "", "")
    assert (tmp_path / "moved.txt").read_bytes() == b"hello, workspace\n"
    assert run(capsysbinary, "cp", cfg, "ws:out/moved.txt", str(tmp_path / "l.txt"), "--partial") == (0, "", "")
    assert os.path.islink(tmp_path / "l.txt")
    code, out, _ = run(capsysbinary, "du", cfg)
    assert code == 0 and out.startswith("used   17 B in 1 files\ntotal  ")
    code, out, _ = run(capsysbinary, "du", cfg, "--json")
    usage = json.loads(out)
    assert (usage["used_size"], usage["file_count"], usage["method"]) == (17, 1, "walk+statvfs")
    assert run(capsysbinary, "rm", cfg, "out/moved.txt") == (0, "", "")
    code, _, err = run(capsysbinary, "rm", cfg, "out/moved.txt")
    assert code == 1 and err == "brokers rm: out/moved.txt: no such file in the workspace\n"
    assert run(capsysbinary, "rm", cfg, "out/moved.txt", "--missing-ok") == (0, "", "")
    (host_root / "x").write_bytes(b"1")
    assert run(capsysbinary, "rm", cfg, "--all") == (0, "deleted 1 files\n", "")


def test_errors_are_one_line(capsysbinary, cfg, tmp_path):
    for args in (["cat", cfg, "../etc/passwd"], ["cat", cfg, "missing"], ["ls", str(tmp_path / "nope.json")],
                 ["cp", cfg, str(tmp_path / "nope"), "ws:x"], ["mv", cfg, "a", "/b"]):
        code, out, err = run(capsysbinary, *args)
        assert code == 1, args
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    code, _, err = run(capsysbinary, "ls", str(tmp_path / "nope.json"))
    assert "configuration file" in err


def test_volume(capsysbinary, cfg, host_root):
    assert run(capsysbinary, "volume", cfg, "--docker", "/ws") == (
        0, f"--mount type=bind,source={host_root},target=/ws\n", "")
    _code, out, _ = run(capsysbinary, "volume", cfg, "--kubernetes", "data")
    assert json.loads(out) == {"name": "data", "hostPath": {"path": str(host_root), "type": "Directory"}}
    assert run(capsysbinary, "volume", cfg, "--mount", "/mnt/x") == (0, f"mount --bind {host_root} /mnt/x\n", "")


def test_progress_bar_for_large_copies(capsysbinary, cfg, tmp_path, host_root):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    code, _, err = run(capsysbinary, "cp", cfg, str(big), "ws:big.bin", "--progress")
    assert code == 0 and "20.0M" in err and "100%" in err
    assert (host_root / "big.bin").read_bytes() == big.read_bytes()
    code, _, err = run(capsysbinary, "cp", cfg, "ws:big.bin", str(tmp_path / "back.bin"), "--progress")
    assert code == 0 and "100%" in err
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()


def test_human_size():
    assert [human_size(n) for n in (0, 1023, 1024, 1536, 5 << 30, None)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 GiB", "unknown"]


def test_console_script(cfg):
    exe = os.path.join(os.path.dirname(sys.executable), "brokers")
    done = subprocess.run([exe, "validate", cfg], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "valid\n")
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert done.stdout.startswith("brokers ")


ARG = st.one_of(st.sampled_from(["ws:", "ws:a", "-", "--json", "--range", "1-2", "--all", "..", "/", "--docker", "x"]),
                st.text(max_size=12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["validate", "ls", "cat", "cp", "mv", "rm", "du", "volume"]),
       args=st.lists(ARG, max_size=4))
def test_fuzzed_arguments_never_crash(capsysbinary, cfg, command, args):
    if any("\x00" in a for a in args):
        args = [a.replace("\x00", "") for a in args]
    argv = [command, cfg, *args] if command != "validate" else [command, *args]
    if command == "rm" and "--all" in args:
        return
    code = main(argv)
    _, err = capsysbinary.readouterr()
    assert code in (0, 1, 2)
    assert "Traceback" not in err.decode()
