"""NFS configuration, mode selection, mountinfo parsing, volumes and mounting: no server needed."""

from __future__ import annotations

import builtins
import shutil
import sys

import pytest

import brokers
from brokers.backends.nfs.broker import NfsBroker, find_mount
from brokers.config import NfsConfig
from brokers.core.mounts import parse_mountinfo
from tests.conftest import missing

BAD_PATH = ("broker.nfs_path must look like server:/export/path (a host name, an IPv4 address or an [IPv6] "
            "address, a colon, then an absolute path without '..')")


def check(broker: dict) -> dict:
    return brokers.validate_configuration({"broker": {"type": "nfs", **broker}}).to_dict()


@pytest.mark.parametrize("nfs_path", [
    "fileserver:/exports/ws", "nfs-1.example.com:/a/b", "10.0.0.5:/data", "[fe80::1]:/x", "[::1]:/export/sub",
    "[2001:db8::10]:/srv/nfs", "srv:/", "FS01:/Data Set/x",
])
def test_valid_nfs_paths(nfs_path):
    result = check({"nfs_path": nfs_path})
    assert result["is_valid"], result["errors"]


@pytest.mark.parametrize("nfs_path", [
    "fileserver",            # no export
    "fileserver:exports",    # relative export
    "fileserver:",           # empty export
    ":/x",                   # no server
    "fe80::1:/x",            # IPv6 without brackets
    "[fe80::1:/x",           # unclosed bracket
    "[fe80::zz]:/x",         # not an IPv6 address
    "-bad:/x",               # host name starting with '-'
    "a b:/x",                # space in the host name
    "srv:/a\x00b",           # NUL in the path
    "nfs://srv/x",           # a URL, not server:/path
    "",
])
def test_invalid_nfs_paths_say_what_is_expected(nfs_path):
    result = check({"nfs_path": nfs_path})
    assert not result["is_valid"]
    assert result["errors"] == [{"name": "invalid_value", "description": BAD_PATH, "path": "/broker/nfs_path"}]


def test_nfs_path_is_required():
    result = check({})
    assert not result["is_valid"]
    assert any("nfs_path" in e["description"] for e in result["errors"])


def test_nfs_options_valid():
    result = check({"nfs_path": "s:/x", "host_path": "/mnt/x", "nfs_version": "4.1", "nfs_port": 2049,
                    "mount_port": 20048, "mount_options": ["hard", "nfsvers=4.1", "timeo=600", "sec=sys"],
                    "total_size": 10 ** 12})
    assert result["is_valid"], result["errors"]
    config = brokers.load_configuration({"broker": {"type": "nfs", "nfs_path": "s:/x", "mount_options": ["hard"]}})
    assert config.broker.mount_options == ("hard",)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("nfs_version", "4", 'broker.nfs_version must be one of "3", "4.1" (got "4")'),
    ("nfs_version", "4.2", 'broker.nfs_version must be one of "3", "4.1" (got "4.2")'),
    ("nfs_port", 0, "broker.nfs_port must be a port number from 1 to 65535"),
    ("nfs_port", 65536, "broker.nfs_port must be a port number from 1 to 65535"),
    ("mount_port", -1, "broker.mount_port must be a port number from 1 to 65535"),
    ("total_size", -1, "broker.total_size must be a whole number of bytes, 0 or more"),
    ("host_path", "mnt/x", "broker.host_path must be an absolute path (starting with '/')"),
])
def test_nfs_option_errors(field, value, message):
    result = check({"nfs_path": "s:/x", field: value})
    assert not result["is_valid"]
    assert [e["description"] for e in result["errors"]] == [message]
    assert result["errors"][0]["path"] == f"/broker/{field}"


@pytest.mark.parametrize("value", [3, "2049", 1.5, True, None])
def test_nfs_port_types(value):
    for field in ("nfs_port", "mount_port", "nfs_version"):
        if field == "nfs_version" and value == 3:
            continue
        result = check({"nfs_path": "s:/x", field: value})
        if field != "nfs_version" and value == 3:
            assert result["is_valid"]
        else:
            assert not result["is_valid"], (field, value)
            assert result["errors"][0]["path"] == f"/broker/{field}"


@pytest.mark.parametrize("options", [["rw,hard"], ["a b"], "hard", [""], [3], ["hard;rm -rf /"]])
def test_mount_option_errors(options):
    result = check({"nfs_path": "s:/x", "mount_options": options})
    assert not result["is_valid"]
    assert all(e["path"].startswith("/broker/mount_options") for e in result["errors"])


def test_unknown_nfs_field():
    result = check({"nfs_path": "s:/x", "nfs_vers": "3"})
    assert not result["is_valid"]


@pytest.mark.parametrize(("nfs_path", "server", "export"), [
    ("fs:/exports/ws/", "fs", "/exports/ws"), ("[fe80::1]:/x", "fe80::1", "/x"), ("10.1.2.3:/", "10.1.2.3", "/"),
])
def test_server_and_export(nfs_path, server, export):
    config = NfsConfig(nfs_path=nfs_path)
    assert (config.server, config.export) == (server, export)


# ---------------------------------------------------------------------------- mountinfo
MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:45 / /mnt/data rw,relatime shared:20 - nfs4 fileserver:/exports rw,vers=4.1,addr=10.0.0.5,clientaddr=10.0.0.9
41 22 0:46 / /mnt/deep rw,relatime shared:21 - nfs4 fileserver:/exports/ws rw,vers=4.1,addr=10.0.0.5
42 22 0:47 / /mnt/v6\040space rw,relatime - nfs [fe80::1]:/srv rw,vers=3,addr=fe80::1
43 22 0:48 /sub /mnt/bound rw,relatime - nfs other:/vol rw,vers=3,addr=10.0.0.7
44 22 0:49 / /mnt/fuse rw - fuse.s3fs s3fs rw
45 22 0:50 / /mnt/cifs rw - cifs //fileserver/exports rw
"""


@pytest.mark.parametrize(("server", "export", "expected"), [
    ("fileserver", "/exports/ws", "/mnt/deep"),               # the deepest mount wins
    ("fileserver", "/exports/ws/a/b", "/mnt/deep/a/b"),
    ("fileserver", "/exports/other", "/mnt/data/other"),
    ("FILESERVER", "/exports", "/mnt/data"),
    ("10.0.0.5", "/exports/x", "/mnt/data/x"),               # matched through addr=
    ("fe80::1", "/srv/p", "/mnt/v6 space/p"),                  # IPv6 source, escaped space in the mount point
    ("other", "/vol/sub/q", "/mnt/bound/q"),                   # a mount of a sub-directory (root field)
    ("other", "/vol/elsewhere", None),
    ("fileserver", "/exportsX", None),                         # not a path prefix
    ("nfs.example", "/exports/ws", None),
])
def test_find_mount(server, export, expected):
    assert find_mount(server, export, parse_mountinfo(MOUNTINFO)) == expected


def test_find_mount_ignores_garbage():
    assert find_mount("s", "/x", parse_mountinfo("garbage\n\n1 2 3\n- - -\n")) is None


# ---------------------------------------------------------------------------- modes
def nfs_config(**extra):
    return brokers.load_configuration({"broker": {"type": "nfs", "nfs_path": "127.0.0.1:/export/ws", **extra}})


def nfs_mount_line(point, source="127.0.0.1:/export/ws", fstype="nfs4", root="/", addr="127.0.0.1"):
    return f"40 22 0:45 {root} {point} rw - {fstype} {source} rw,vers=4.1,addr={addr}\n"


def test_mounted_mode_with_host_path(tmp_path):
    broker = NfsBroker(nfs_config(host_path=str(tmp_path)), mountinfo=nfs_mount_line(tmp_path))
    assert broker.mode == "mounted" and broker.capabilities.local_files and broker.host_path == str(tmp_path)
    broker.write_bytes("a/b.txt", b"hi")
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"hi"
    assert broker.local_path("a/b.txt") == str(tmp_path / "a" / "b.txt")
    assert type(broker.fs).__name__ == "BrokerFileSystem"  # one view for every backend, mounted or not
    assert broker.fs.cat_file("a/b.txt") == b"hi"


@pytest.mark.parametrize(("mountinfo", "reason"), [
    ("", "no mount covers it"),
    ("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "it is on ext4 /dev/sda1 (mounted at /), not an NFS mount"),
    ("{mount}", "it shows 127.0.0.1:/export/other"),                                    # another export
    ("{other_server}", "it shows 10.9.9.9:/export/ws"),                                 # another server
    ("{parent}", "it shows 127.0.0.1:/export"),                                         # the export above it
], ids=["no-mount", "local-disk", "other-export", "other-server", "export-above"])
def test_host_path_that_is_not_a_mount_of_nfs_path_is_never_written(tmp_path, mountinfo, reason):
    """A plain folder (or a mount of something else) at host_path: direct mode, nothing lands on the local disk."""
    mountinfo = mountinfo.format(mount=nfs_mount_line(tmp_path, "127.0.0.1:/export/other"),
                                 other_server=nfs_mount_line(tmp_path, "10.9.9.9:/export/ws", addr="10.9.9.9"),
                                 parent=nfs_mount_line(tmp_path, "127.0.0.1:/export"))
    broker = NfsBroker(nfs_config(host_path=str(tmp_path)), mountinfo=mountinfo)
    assert broker.mode == "direct" and broker.host_path is None and not broker.capabilities.local_files
    assert broker.local_path("a") is None
    assert broker.host_path_problem == f"broker.host_path {tmp_path} is not a mount of 127.0.0.1:/export/ws: {reason}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["point", "below", "through-addr", "through-link"])
def test_host_path_verified_as_a_mount(tmp_path, name):
    """host_path is the mount of nfs_path, or a directory of a mount of an export above it (by name or addr=)."""
    (tmp_path / "mnt" / "ws").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "mnt")
    host_path, mountinfo = {
        "point": (tmp_path / "mnt", nfs_mount_line(tmp_path / "mnt")),
        "below": (tmp_path / "mnt" / "ws", nfs_mount_line(tmp_path / "mnt", "127.0.0.1:/export")),
        "through-addr": (tmp_path / "mnt", nfs_mount_line(tmp_path / "mnt", "fs.example:/export/ws")),
        "through-link": (tmp_path / "link", nfs_mount_line(tmp_path / "mnt")),
    }[name]
    broker = NfsBroker(nfs_config(host_path=str(host_path)), mountinfo=mountinfo)
    assert broker.mode == "mounted" and broker.host_path == str(host_path) and broker.host_path_problem is None


def test_host_path_not_mounted_without_nfs_rs_is_a_mount_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nfs_rs", None)  # an import of nfs_rs now fails
    with pytest.raises(brokers.MountError) as info:
        NfsBroker(nfs_config(host_path=str(tmp_path)), mountinfo="")
    assert str(info.value) == (
        f"broker.host_path {tmp_path} is not a mount of 127.0.0.1:/export/ws: no mount covers it; mount the "
        "export there, or install the userspace NFS client (pip install 'brokers[nfs]') to work without a mount")
    assert list(tmp_path.iterdir()) == []


def test_validation_warns_when_host_path_is_not_a_mount(tmp_path):
    config = {"broker": {"type": "nfs", "nfs_path": "127.0.0.1:/export/ws", "host_path": str(tmp_path)}}
    result = brokers.validate_configuration(config).to_dict()
    assert result["is_valid"]
    assert result["warnings"] == [{
        "name": "host_path_not_mounted", "path": "/broker/host_path",
        "description": f"broker.host_path {tmp_path} is not a mount of 127.0.0.1:/export/ws: it is on "
                       f"{mount_of(tmp_path)}, not an NFS mount; the broker will reach the export with its "
                       "userspace NFS client instead"}]
    missing = {"broker": {**config["broker"], "host_path": str(tmp_path / "nowhere")}}
    assert [w["name"] for w in brokers.validate_configuration(missing).to_dict()["warnings"]] == ["host_path_missing"]
    assert brokers.validate_configuration(config, check_access=False).to_dict()["warnings"] == []


def mount_of(path) -> str:
    from brokers.core.mounts import mount_containing, read_mounts

    mount = mount_containing(str(path), read_mounts() or [])
    assert mount is not None
    return f"{mount.fstype} {mount.source} (mounted at {mount.point})"


def test_mounted_mode_on_a_missing_workspace_folder_names_it(tmp_path):
    broker = NfsBroker(nfs_config(), mountinfo=nfs_mount_line(tmp_path, "127.0.0.1:/export"))
    assert broker.mode == "mounted" and broker.host_path == str(tmp_path / "ws")
    with pytest.raises(brokers.WorkspaceNotFound, match=f"^workspace folder {tmp_path / 'ws'} does not exist$"):
        list(broker.list())
    with pytest.raises(brokers.WorkspaceNotFound):
        broker.write_bytes("a", b"x")
    assert list(tmp_path.iterdir()) == []


def test_mounted_mode_from_mountinfo(tmp_path):
    (tmp_path / "ws").mkdir()
    info = f"40 22 0:45 / {tmp_path} rw - nfs4 127.0.0.1:/export rw,vers=4.1,addr=127.0.0.1\n"
    broker = NfsBroker(nfs_config(), mountinfo=info)
    assert broker.mode == "mounted" and broker.host_path == str(tmp_path / "ws")
    broker.write_bytes("f", b"x")
    assert (tmp_path / "ws" / "f").read_bytes() == b"x"


def test_direct_mode_without_mount():
    broker = NfsBroker(nfs_config(), mountinfo="")
    assert broker.mode == "direct" and broker.host_path is None and not broker.capabilities.local_files
    assert broker.describe() == "nfs://127.0.0.1/export/ws"
    assert broker.local_path("a") is None
    assert type(broker.fs).__name__ == "BrokerFileSystem"


def test_missing_nfs_rs_is_a_clear_error(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_nfs_rs(name, *args, **kwargs):
        if name == "nfs_rs" or name.startswith("nfs_rs."):
            raise ImportError("No module named 'nfs_rs'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "nfs_rs", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_nfs_rs)
    with pytest.raises(brokers.MissingDependency) as info:
        NfsBroker(nfs_config(), mountinfo="")
    assert "pip install 'brokers[nfs]'" in str(info.value)
    assert isinstance(info.value, ImportError)
    # an export mounted at host_path needs no extra
    assert NfsBroker(nfs_config(host_path=str(tmp_path)), mountinfo=nfs_mount_line(tmp_path)).mode == "mounted"


# ---------------------------------------------------------------------------- volumes and mount
def test_volume_defaults_from_config():
    broker = NfsBroker(nfs_config(nfs_version="3", nfs_port=2050, mount_port=20048), mountinfo="")
    volume = broker.volume
    assert volume is not None
    assert volume.kind == "nfs"
    assert volume.server == "127.0.0.1"
    assert volume.source == "/export/ws"
    assert volume.options == ("hard", "nfsvers=3", "port=2050", "mountport=20048")
    assert not volume.read_only
    assert volume.docker_mount("/data") == (
        'type=volume,target=/data,volume-driver=local,volume-opt=type=nfs,'
        '"volume-opt=o=addr=127.0.0.1,hard,nfsvers=3,port=2050,mountport=20048",volume-opt=device=:/export/ws')
    assert volume.kubernetes_volume("ws") == {
        "name": "ws", "nfs": {"server": "127.0.0.1", "path": "/export/ws", "readOnly": False}}
    assert volume.mount_argv("/mnt/ws") == [
        "mount", "-t", "nfs", "-o", "hard,nfsvers=3,port=2050,mountport=20048", "127.0.0.1:/export/ws", "/mnt/ws"]


def test_volume_with_configured_options_and_ipv6():
    config = brokers.load_configuration({"broker": {"type": "nfs", "nfs_path": "[fd00::5]:/srv/ws/",
                                                    "mount_options": ["soft", "nfsvers=4.1", "ro"]}})
    broker = NfsBroker(config, mountinfo="")
    volume = broker.volume
    assert volume is not None
    assert (volume.server, volume.source, volume.options) == ("fd00::5", "/srv/ws", ("soft", "nfsvers=4.1", "ro"))
    assert volume.mount_argv("/m") == ["mount", "-t", "nfs", "-o", "soft,nfsvers=4.1,ro", "[fd00::5]:/srv/ws", "/m"]
    # "ro" among the options makes the volume read-only everywhere, Kubernetes included (it takes no options)
    assert volume.read_only
    assert volume.kubernetes_volume("ws") == {"name": "ws", "nfs": {"server": "fd00::5", "path": "/srv/ws",
                                                                    "readOnly": True}}
    assert volume.kubernetes_mount("ws", "/data") == {"name": "ws", "mountPath": "/data", "readOnly": True}
    assert volume.docker_mount("/d").startswith("type=volume,target=/d,readonly,")
    assert broker.describe() == "nfs://[fd00::5]/srv/ws"
    default = NfsBroker(brokers.load_configuration({"broker": {"type": "nfs", "nfs_path": "s:/x"}}), mountinfo="")
    assert default.volume is not None and default.volume.options == ("hard", "nfsvers=3")


def test_mount_without_kernel_support_raises_mount_error(tmp_path):
    if shutil.which("mount") is None:
        missing("mount", "the mount command is not installed (apt-get install mount)")
    broker = NfsBroker(nfs_config(nfs_port=1, mount_port=1, mount_options=["soft", "timeo=1", "retrans=0",
                                                                             "retry=0", "nfsvers=3"]),
                       mountinfo="")
    target = tmp_path / "mnt"
    with pytest.raises(brokers.MountError) as info:
        broker.mount(str(target))
    message = str(info.value)
    assert "nfs://127.0.0.1/export/ws" in message
    assert "userspace NFS client" in message and "direct mode" in message
    assert isinstance(info.value, OSError)


# ---------------------------------------------------------------------------- error table
def test_error_table():
    try:
        import nfs_rs
    except ImportError:
        missing("nfs-rs", "pip install 'brokers[nfs]'")
    from brokers.backends.nfs.direct.errors import is_transient, translate

    transient = [
        nfs_rs.NfsConnectionError(message="reset"), nfs_rs.NfsTimeoutError(message="deadline"),
        nfs_rs.NfsRetryableError(message="retry uncached reply", code_name="NFS4ERR_RETRY_UNCACHED_REP",
                                 recovery_action="retry"),
        nfs_rs.NfsStateLostError(message="stale", code_name="NFS3ERR_STALE", recovery_action="remount"),
        nfs_rs.NfsOSError(message="RPC error: NFSv4.1 connection rebind failed; connection is not ready"),
        nfs_rs.NfsProtocolError(message="delay", code_name="NFS4ERR_DELAY"),
        nfs_rs.NfsOSError(message="i/o", errno=5), ConnectionResetError(),
        nfs_rs.NfsUncertainOutcomeError(message="Uncertain NFS operation ReplaySensitive",
                                        recovery_action="verify_then_resume", outcome="uncertain"),
    ]
    for exc in transient:
        assert is_transient(exc), exc
        assert isinstance(translate(exc, "p"), brokers.StorageUnavailable)
    permanent = {
        nfs_rs.NfsNotFoundError(message="noent", errno=2): brokers.FileNotFound,
        nfs_rs.NfsNotADirectoryError(message="notdir"): brokers.FileNotFound,
        nfs_rs.NfsIsADirectoryError(message="isdir"): brokers.FileNotFound,
        nfs_rs.NfsProtocolError(message="symlink", code_name="NFS4ERR_SYMLINK"): brokers.FileNotFound,
        nfs_rs.NfsPermissionError(message="denied"): brokers.AccessDenied,
        nfs_rs.NfsOSError(message="no space", errno=28): brokers.BrokerError,
        nfs_rs.NfsMountError(message="access denied"): brokers.BrokerError,
        ValueError("not nfs"): brokers.BrokerError,
    }
    for exc, kind in permanent.items():
        assert not is_transient(exc), exc
        translated = translate(exc, "p")
        assert type(translated) is kind, (exc, translated)
        assert "p" in str(translated)
