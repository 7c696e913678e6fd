"""get_broker dispatch, third-party brokers through entry points, and the public face."""

from __future__ import annotations

import sys
import textwrap

import pytest

import brokers
from brokers.backends.host import HostBroker


def test_get_broker_dispatches_on_type(tmp_path):
    broker = brokers.get_broker({"broker": {"type": "host", "host_path": str(tmp_path)}})
    assert isinstance(broker, HostBroker) and broker.broker_type == "host"
    assert repr(broker) == f"<HostBroker {tmp_path}>"
    with pytest.raises(brokers.InvalidConfiguration):
        brokers.get_broker({"broker": {"type": "ftp"}})


def test_third_party_broker_joins_through_an_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "memory_broker.py"
    pkg.write_text(textwrap.dedent('''
        from brokers.backends.host import HostBroker

        class MemoryBroker(HostBroker):
            broker_type = "memory"
            config_schema = {"type": "object", "required": ["type", "root"],
                             "properties": {"type": {"const": "memory"}, "root": {"type": "string"}},
                             "additionalProperties": False}

            def __init__(self, config):
                from brokers.config import HostConfig, WorkspaceConfiguration
                root = config.broker.options["root"]
                super().__init__(WorkspaceConfiguration(broker=HostConfig(host_path=root)))
                self.config = config
    '''))
    dist = tmp_path / "memory_broker-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memory-broker\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[brokers.brokers]\nmemory = memory_broker:MemoryBroker\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "root").mkdir()
    assert "memory" in brokers.broker_types()
    config = {"broker": {"type": "memory", "root": str(tmp_path / "root")}}
    assert brokers.validate_configuration(config).is_valid
    bad = brokers.validate_configuration({"broker": {"type": "memory", "root": 5}})
    assert [(e["name"], e["path"]) for e in bad.errors] == [("wrong_type", "/broker/root")]
    broker = brokers.get_broker(config)
    broker.write_bytes("a", b"plug-in")
    assert (tmp_path / "root" / "a").read_bytes() == b"plug-in"
    assert broker.config.to_dict()["broker"] == {"type": "memory", "root": str(tmp_path / "root")}
    sys.modules.pop("memory_broker", None)


def test_public_face():
    assert sorted(brokers.__all__) == sorted([
        "MASK", "AccessDenied", "Broker", "BrokerError", "Capabilities", "FileInfo", "FileNotFound", "FolderUsage",
        "UsageReport", "IntegrityError", "InvalidConfiguration", "MissingDependency", "MountError", "PathOutsideWorkspace",
        "StorageUnavailable", "Usage", "ValidationResult", "Volume", "WorkspaceConfiguration", "WorkspaceNotFound",
        "__version__",
        "broker_types", "configuration_schema", "get_broker", "load_configuration", "validate_configuration"])
    for name in brokers.__all__:
        assert hasattr(brokers, name)
    for leaf in (brokers.InvalidConfiguration, brokers.PathOutsideWorkspace, brokers.FileNotFound,
                 brokers.MountError, brokers.StorageUnavailable, brokers.IntegrityError, brokers.AccessDenied):
        assert issubclass(leaf, brokers.BrokerError)
    assert issubclass(brokers.FileNotFound, FileNotFoundError)


def test_importing_brokers_does_not_import_the_service():
    import subprocess

    code = "import sys, brokers; print('fastapi' in sys.modules, 'sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
