"""The distribution: a wheel built from a clean copy of the tree carries every module and the top-level schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files() -> list[str]:
    """The files of the tree as a fresh clone would have them: tracked, plus new ones git does not ignore."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    clean = tmp_path_factory.mktemp("checkout")
    for name in _tracked_files():
        target = clean / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(clean)],
                   check=True, capture_output=True, timeout=600)
    (built,) = dist.glob("brokers-*.whl")
    return built


def test_wheel_carries_the_schema_and_every_module(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packaged = archive.read("brokers/schemas/workspace_configuration.json")
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert packaged == (ROOT / "schemas" / "workspace_configuration.json").read_bytes()
    modules = {f for f in _tracked_files() if f.startswith("brokers/") and f.endswith(".py")}
    assert modules, "no module found in the tree"
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    assert {"brokers/py.typed", "brokers/service/db/migrations/script.py.mako"} <= names
    assert not any(n.startswith(("schemas/", "tests/", "bench/")) for n in names)
    assert "[fsspec.specs]\nbrokers = brokers.fsspec:BrokerFileSystem" in entry_points
    assert "host = brokers.backends.host:HostBroker" in entry_points


def test_installed_wheel_loads_the_schema_from_the_package(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = ("import json, brokers; s = brokers.configuration_schema(); "
            "print(json.dumps([brokers.__file__, s['$id'], "
            "brokers.validate_configuration({'broker': {'type': 'nfs'}}, check_access=False).errors[0]['name']]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout
    where, schema_id, error = json.loads(out)
    assert where.startswith(str(site))  # the wheel's copy, not the source tree (which has no brokers/schemas)
    assert schema_id == json.loads((ROOT / "schemas" / "workspace_configuration.json").read_text())["$id"]
    assert error == "missing_field"
