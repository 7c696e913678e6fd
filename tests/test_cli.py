"""The ``brokers`` command: every subcommand, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
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
    assert code == 2 and "No such file or directory" in err


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
    for args in (["cat", cfg, "../etc/passwd"], ["cat", cfg, "missing"],
                 ["cp", cfg, str(tmp_path / "nope"), "ws:x"], ["mv", cfg, "a", "/b"]):
        code, out, err = run(capsysbinary, *args)
        assert code == 1, args
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert err.startswith(f"brokers {args[0]}: "), err


def test_volume(capsysbinary, cfg, host_root):
    assert run(capsysbinary, "volume", cfg, "--docker", "/ws") == (
        0, f"--mount type=bind,source={host_root},target=/ws\n", "")
    _code, out, _ = run(capsysbinary, "volume", cfg, "--kubernetes", "data")
    assert json.loads(out) == {"name": "data", "hostPath": {"path": str(host_root), "type": "Directory"}}
    assert run(capsysbinary, "volume", cfg, "--mount", "/mnt/x") == (0, f"mount --bind {host_root} /mnt/x\n", "")


def test_progress_bar_for_large_copies(capsysbinary, cfg, tmp_path, host_root):
    """One unit system (binary, labelled KiB/MiB/GiB), and the phase after the last byte is shown."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    code, _, err = run(capsysbinary, "cp", cfg, str(big), "ws:big.bin", "--progress")
    assert code == 0 and "100%" in err and "20.0 MiB/20.0 MiB" in err, err
    assert re.search(r"\d (B|KiB|MiB|GiB)/s", err) and not re.search(r"\d(k|K|M|G)B?/s|\dM/", err), err
    assert "big.bin committing" in err and err.rindex("committing") < err.rindex("100%")
    assert (host_root / "big.bin").read_bytes() == big.read_bytes()
    code, _, err = run(capsysbinary, "cp", cfg, "ws:big.bin", str(tmp_path / "back.bin"), "--progress")
    assert code == 0 and "100%" in err and "big.bin verifying" in err, err
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    small = tmp_path / "small.txt"
    small.write_bytes(b"12345")
    code, _, err = run(capsysbinary, "cp", cfg, str(small), "ws:small.txt", "--progress")
    assert code == 0 and "5 B/5 B" in err


def _leftovers(*dirs):
    return sorted(str(p) for d in dirs for p in d.rglob("*") if p.name.startswith(".") or p.suffix == ".part")


def test_progress_copy_interrupted_leaves_nothing_behind(capsysbinary, cfg, tmp_path, host_root, monkeypatch):
    """Ctrl-C in the middle of a copy with a bar: no temporary file anywhere, the destination keeps its content."""
    import tqdm

    local = tmp_path / "local"
    local.mkdir()
    big = local / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    (host_root / "big.bin").write_bytes(b"old in the workspace")
    (local / "back.bin").write_bytes(b"old here")

    def interrupt(self, n=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(tqdm.tqdm, "update", interrupt)
    for args in ((str(big), "ws:big.bin"), ("ws:big.bin", str(local / "back.bin"))):
        code, out, err = run(capsysbinary, "cp", cfg, *args, "--progress")
        assert (code, out, err.splitlines()[-1]) == (130, "", "brokers cp: interrupted"), err
    assert (host_root / "big.bin").read_bytes() == b"old in the workspace"
    assert (local / "back.bin").read_bytes() == b"old here"
    assert _leftovers(local, host_root) == []


def test_progress_download_keeps_the_umask(capsysbinary, cfg, tmp_path, host_root):
    (host_root / "f.bin").write_bytes(b"x" * 1000)
    old = os.umask(0o027)
    try:
        for name, extra in (("plain.bin", []), ("bar.bin", ["--progress"])):
            assert run(capsysbinary, "cp", cfg, "ws:f.bin", str(tmp_path / name), *extra)[0] == 0
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name
    finally:
        os.umask(old)


@pytest.mark.s3
def test_progress_copies_to_s3_are_verified(capsysbinary, s3_config, s3_server, s3_client, s3_bucket, tmp_path):
    """With a bar, the same checks as without: a rejected part keeps the old object, a corrupt body is refused."""
    cfg = tmp_path / "s3.json"
    cfg.write_text(json.dumps(s3_config))
    local = tmp_path / "local"
    local.mkdir()
    big = local / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    s3_client.put_object(Bucket=s3_bucket, Key="ws/big.bin", Body=b"old object")
    (local / "back.bin").write_bytes(b"old here")
    rule = s3_server.inject(lambda r: r.method == "PUT" and "partNumber=2" in r.query, status=400, code="BadDigest")
    code, out, err = run(capsysbinary, "cp", str(cfg), str(big), "ws:big.bin", "--progress")
    assert (code, out) == (1, "") and err.splitlines()[-1].startswith("brokers cp: ") and rule.hits >= 1, err
    assert s3_client.get_object(Bucket=s3_bucket, Key="ws/big.bin")["Body"].read() == b"old object"
    assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    s3_server.clear_rules()
    assert run(capsysbinary, "cp", str(cfg), str(big), "ws:big.bin", "--progress")[0] == 0
    assert s3_client.get_object(Bucket=s3_bucket, Key="ws/big.bin")["Body"].read() == big.read_bytes()
    s3_client.put_object(Bucket=s3_bucket, Key="ws/big.bin", Body=big.read_bytes())  # one PUT: an MD5 ETag
    s3_server.inject(lambda r: r.method == "GET" and r.path.endswith("/ws/big.bin"), corrupt=True)
    code, out, err = run(capsysbinary, "cp", str(cfg), "ws:big.bin", str(local / "back.bin"), "--progress")
    assert (code, out) == (1, "") and "brokers cp: download of big.bin" in err, err
    assert (local / "back.bin").read_bytes() == b"old here"
    assert _leftovers(local) == []


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
    assert code in (0, 1, 2, 3)
    assert "Traceback" not in err.decode() and "unexpected error" not in err.decode()


# ---------------------------------------------------------------------------------------------------- errors
COMMANDS_WITH_CONFIG = [["ls"], ["ls", "-l"], ["cat", "a"], ["cp", "LOCAL", "ws:a"], ["cp", "ws:a", "LOCAL"],
                        ["mv", "a", "b"], ["rm", "a"], ["rm", "--all"], ["du"], ["volume", "--docker", "/x"]]


def _argv(command, cfg, local):
    return [command[0], cfg, *[local if a == "LOCAL" else a for a in command[1:]]]


def test_a_missing_configuration_file_exits_2_in_every_command(capsysbinary, tmp_path):
    missing = str(tmp_path / "missing.json")
    local = tmp_path / "local.txt"
    local.write_bytes(b"x")
    expected = f"configuration file {missing!r}: No such file or directory\n"
    assert run(capsysbinary, "validate", missing) == (2, "", f"brokers validate: {expected}")
    assert run(capsysbinary, "validate", missing, "--json") == (2, "", f"brokers validate: {expected}")
    for command in COMMANDS_WITH_CONFIG:
        assert run(capsysbinary, *_argv(command, missing, str(local))) == (2, "", f"brokers {command[0]}: {expected}")


def test_an_invalid_configuration_exits_2_outside_validate(capsysbinary, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"broker": {"type": "host", "host_path": "rel"}}))
    for command in COMMANDS_WITH_CONFIG:
        code, out, err = run(capsysbinary, *_argv(command, str(bad), str(tmp_path / "l")))
        assert (code, out) == (2, ""), command
        assert err == (f"brokers {command[0]}: invalid workspace configuration: broker.host_path must be an "
                       "absolute path (starting with '/')\n")


def test_every_message_names_its_command(capsysbinary, cfg):
    cases = {("cp", cfg, "a", "b"): "brokers cp: exactly one of SRC and DST must be a workspace path (ws:PATH)",
             ("cp", cfg, "ws:a", "ws:b"): "brokers cp: exactly one of SRC and DST must be a workspace path (ws:PATH)",
             ("rm", cfg): "brokers rm: give at least one path (or --all)",
             ("rm", cfg, "a", "--all"): "brokers rm: give paths or --all, not both",
             ("validate", cfg, "--offline", "--check-access"): "brokers validate: argument --check-access: not "
                                                                "allowed with argument --offline",
             ("cat", cfg): "brokers cat: the following arguments are required: path",
             ("frobnicate",): "brokers: argument command: invalid choice: 'frobnicate'"}
    for args, message in cases.items():
        code, out, err = run(capsysbinary, *args)
        assert (code, out) == (2, ""), args
        assert err.startswith(message) and err.count("\n") == 1, (args, err)


def test_a_missing_workspace_folder_is_one_line_in_every_command(capsysbinary, tmp_path):
    """The configuration is valid, the folder it names is not there: every command says so (exit 1)."""
    root = tmp_path / "not-created"
    cfg = tmp_path / "ws.json"
    cfg.write_text(json.dumps({"broker": {"type": "host", "host_path": str(root)}}))
    local = tmp_path / "local.txt"
    local.write_bytes(b"x")
    for command in COMMANDS_WITH_CONFIG:
        code, out, err = run(capsysbinary, *_argv(command, str(cfg), str(local)))
        assert (code, out) == (1, ""), (command, out, err)
        assert err.startswith(f"brokers {command[0]}: workspace folder ") and str(root) in err, (command, err)
        assert err.endswith(" does not exist\n") and err.count("\n") == 1, (command, err)
    assert not root.exists() and local.read_bytes() == b"x"


def test_volume_without_host_path_says_why(capsysbinary, tmp_path):
    cfg = tmp_path / "s3.json"
    cfg.write_text(json.dumps({"broker": {"type": "s3", "bucket_name": "data", "endpoint_url": "http://127.0.0.1:1"}}))
    code, out, err = run(capsysbinary, "volume", str(cfg), "--docker", "/x")
    assert (code, out) == (1, "")
    assert err == "brokers volume: this s3 workspace has no host_path: there is no volume to mount\n"
    import brokers

    with pytest.raises(brokers.MountError, match=r"^this s3 workspace has no host_path: it cannot be mounted$"):
        brokers.get_broker(cfg).mount(str(tmp_path / "mnt"))


def test_validate_check_access_fails_on_access_warnings(capsysbinary, tmp_path, cfg):
    missing = tmp_path / "not-created"
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps({"broker": {"type": "host", "host_path": str(missing)}}))
    warning = (f"  warning host_path_missing at /broker/host_path: broker.host_path {str(missing)!r} does not exist "
               "on this machine (or is not a directory)\n")
    assert run(capsysbinary, "validate", str(gone)) == (0, "valid\n" + warning, "")
    assert run(capsysbinary, "validate", str(gone), "--check-access") == (3, "unreachable\n" + warning, "")
    code, out, _ = run(capsysbinary, "validate", str(gone), "--check-access", "--json")
    assert code == 3 and [w["name"] for w in json.loads(out)["warnings"]] == ["host_path_missing"]
    assert run(capsysbinary, "validate", cfg, "--check-access") == (0, "valid\n", "")
    prev = tmp_path / "prev.json"  # a warning about the configuration itself is no access failure
    prev.write_text(json.dumps({"broker": {"type": "nfs", "nfs_path": "srv:/x"}}))
    code, out, _ = run(capsysbinary, "validate", cfg, "--check-access", "--previous", str(prev))
    assert code == 0 and out.startswith("valid\n  warning broker_type ")
    code, out, err = run(capsysbinary, "validate", cfg, "--previous", str(tmp_path / "nope.json"))
    assert (code, out) == (2, "")
    assert err == f"brokers validate: configuration file {str(tmp_path / 'nope.json')!r}: No such file or directory\n"


@pytest.mark.s3
def test_an_unreachable_s3_endpoint_is_one_line_naming_it(capsysbinary, tmp_path):
    from tests.fixtures.s3 import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    cfg = tmp_path / "s3.json"
    cfg.write_text(json.dumps({"broker": {"type": "s3", "bucket_name": "data", "endpoint_url": endpoint,
                                          "credentials": {"access_key_id": "AKIAX", "secret_access_key": "pw-x"}}}))
    for args in (["ls", str(cfg)], ["cat", str(cfg), "a"], ["du", str(cfg)]):
        code, out, err = run(capsysbinary, *args)
        assert (code, out) == (1, ""), args
        assert err.startswith(f"brokers {args[0]}: ") and endpoint in err and err.count("\n") == 1, (args, err)
        assert "pw-x" not in err
    code, out, _ = run(capsysbinary, "validate", str(cfg), "--check-access")
    assert code == 3 and out.startswith("unreachable\n") and "bucket_access" in out and endpoint in out


def test_an_argument_with_a_newline_stays_on_one_line(capsysbinary, cfg, tmp_path):
    code, _, err = run(capsysbinary, "cp", cfg, str(tmp_path / "a\nb"), "ws:x")
    assert (code, err) == (1, f"brokers cp: {tmp_path}/a\\nb: No such file or directory\n")
    code, _, err = run(capsysbinary, "validate", "ws:", "x\ry")
    assert (code, err) == (2, "brokers validate: unrecognized arguments: x\\ry\n")
    assert run(capsysbinary, "cp", cfg, "ws:", "--", "--") == (
        2, "", "brokers cp: the following arguments are required: dst\n")


@pytest.mark.parametrize("option", ["--docker", "--kubernetes", "--mount"])
def test_volume_with_an_empty_target_is_a_usage_error(capsysbinary, cfg, option):
    """Found by the fuzz test: ``--docker ""`` fell through to ``--mount`` and crashed on its missing target."""
    code, out, err = run(capsysbinary, "volume", cfg, option, "")
    assert (code, out) == (2, "")
    assert f"{option}: must not be empty" in err and "Traceback" not in err and "unexpected error" not in err
