"""Configuration schema and validation: documented examples, bad input, warnings, typed objects."""

from __future__ import annotations

import json
import pickle
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brokers
from brokers.config import BUILTIN_CONFIGS, Credentials, NfsConfig, S3Config
from brokers.config.schema import schema

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS = "AKIAIOSFODNN7EXAMPLE"

# The examples of ../shared/reference/scale-v6-workspace-services.txt and DESIGN.md, as they stand.
DOCUMENTED_EXAMPLES = [
    {"broker": {"type": "host", "host_path": "/the/absolute/host/path"}},
    {"broker": {"type": "nfs", "nfs_path": "host:/my/path"}},
    {"broker": {"type": "s3", "bucket_name": "my_bucket.domain.com",
                "credentials": {"access_key_id": ACCESS, "secret_access_key": SECRET},
                "host_path": "/my_bucket", "region_name": "us-east-1"}},
    {"broker": {"type": "host", "host_path": "/host/path"}},
    {"version": "7", "broker": {"type": "host", "host_path": "/data/ws"}},
    {"broker": {"type": "nfs", "nfs_path": "fileserver:/exports/ws"}},
    {"broker": {"type": "s3", "bucket_name": "my-bucket", "region_name": "us-east-1",
                "credentials": {"access_key_id": "...", "secret_access_key": "..."}, "host_path": "/mnt/my-bucket"}},
    {"version": "1.0", "workspace": "raw", "broker": {"type": "host", "host_path": "/data"}},
    {"version": "6", "broker": {"type": "nfs", "nfs_path": "[2001:db8::1]:/exports/ws/sub", "nfs_version": "4.1",
                                "nfs_port": 2049, "mount_port": 20048, "mount_options": ["hard", "nfsvers=4.1"],
                                "host_path": "/mnt/ws", "total_size": 10}},
    {"broker": {"type": "nfs", "nfs_path": "10.0.0.5:/"}},
    {"broker": {"type": "nfs", "nfs_path": "[::1]:/srv/..data/x..y"}},
    {"broker": {"type": "nfs", "nfs_path": "[fe80:0:0:0:0:0:0:1]:/srv"}},
    {"broker": {"type": "s3", "bucket_name": "b12", "endpoint_url": "http://127.0.0.1:9000", "prefix": "team/ws1/",
                "total_size": 0}},
]


@pytest.mark.parametrize("config", DOCUMENTED_EXAMPLES)
def test_documented_examples_are_valid(config):
    result = brokers.validate_configuration(config, check_access=False)
    assert result.errors == []
    assert result.is_valid is True
    loaded = brokers.load_configuration(config)
    assert loaded.broker_type == config["broker"]["type"]


def _host(**extra):
    return {"broker": {"type": "host", "host_path": "/data", **extra}}


def _s3(**extra):
    return {"broker": {"type": "s3", "bucket_name": "my-bucket", **extra}}


def _nfs(**extra):
    return {"broker": {"type": "nfs", "nfs_path": "server:/export", **extra}}


BAD = [
    # (configuration, expected error name, expected JSON pointer)
    ({}, "missing_field", "/broker"),
    ({"broker": {}}, "missing_field", "/broker/type"),
    ({"broker": {"type": "ftp"}}, "unknown_broker_type", "/broker/type"),
    ({"broker": {"type": 3}}, "unknown_broker_type", "/broker/type"),
    ({"broker": "host"}, "wrong_type", "/broker"),
    ({"broker": {"type": "host"}}, "missing_field", "/broker/host_path"),
    ({"broker": {"type": "host", "host_path": "relative/dir"}}, "invalid_value", "/broker/host_path"),
    ({"broker": {"type": "host", "host_path": 42}}, "wrong_type", "/broker/host_path"),
    (_host(nfs_path="a:/b"), "unknown_field", "/broker/nfs_path"),
    (_host(total_size=-1), "invalid_value", "/broker/total_size"),
    (_host(total_size="10GB"), "wrong_type", "/broker/total_size"),
    (_host(total_size=True), "wrong_type", "/broker/total_size"),
    (_host(total_size=1.5), "wrong_type", "/broker/total_size"),
    ({"version": "2", **_host()}, "unsupported_version", "/version"),
    ({"version": 7, **_host()}, "wrong_type", "/version"),
    ({"workspace": "", **_host()}, "invalid_value", "/workspace"),
    ({"extra": 1, **_host()}, "unknown_field", "/extra"),
    ({"broker": {"type": "nfs"}}, "missing_field", "/broker/nfs_path"),
    (_nfs(nfs_path="server/export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="server:export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path=":/export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="2001:db8::1:/export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="bad_host!:/export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="server:/export/../etc"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="server:/export/.."), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="server:/my\texport"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="[::::x]:/export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_path="[1:2]:/export"), "invalid_value", "/broker/nfs_path"),
    (_nfs(nfs_version="4"), "invalid_value", "/broker/nfs_version"),
    (_nfs(nfs_version=3), "wrong_type", "/broker/nfs_version"),
    (_nfs(nfs_port=0), "invalid_value", "/broker/nfs_port"),
    (_nfs(nfs_port=70000), "invalid_value", "/broker/nfs_port"),
    (_nfs(mount_port="2049"), "wrong_type", "/broker/mount_port"),
    (_nfs(mount_options="hard"), "wrong_type", "/broker/mount_options"),
    (_nfs(mount_options=["hard", "rw,exec"]), "invalid_value", "/broker/mount_options/1"),
    (_nfs(host_path="mnt"), "invalid_value", "/broker/host_path"),
    ({"broker": {"type": "s3"}}, "missing_field", "/broker/bucket_name"),
    (_s3(bucket_name="ab"), "invalid_value", "/broker/bucket_name"),
    (_s3(bucket_name="-bucket"), "invalid_value", "/broker/bucket_name"),
    (_s3(bucket_name="has space"), "invalid_value", "/broker/bucket_name"),
    (_s3(credentials={"access_key_id": ACCESS}), "missing_field", "/broker/credentials/secret_access_key"),
    (_s3(credentials={"secret_access_key": SECRET}), "missing_field", "/broker/credentials/access_key_id"),
    (_s3(credentials={"access_key_id": "", "secret_access_key": SECRET}), "invalid_value",
     "/broker/credentials/access_key_id"),
    (_s3(credentials="AKIA:secret"), "wrong_type", "/broker/credentials"),
    (_s3(credentials={"access_key_id": ACCESS, "secret_access_key": SECRET, "token": "x"}), "unknown_field",
     "/broker/credentials/token"),
    (_s3(region_name="US East"), "invalid_value", "/broker/region_name"),
    (_s3(endpoint_url="127.0.0.1:9000"), "invalid_value", "/broker/endpoint_url"),
    (_s3(endpoint_url="ftp://host"), "invalid_value", "/broker/endpoint_url"),
    (_s3(prefix="/abs"), "invalid_value", "/broker/prefix"),
    (_s3(prefix="a/../b"), "invalid_value", "/broker/prefix"),
    (_s3(prefix="a//b"), "invalid_value", "/broker/prefix"),
    (_s3(host_path="mnt/bucket"), "invalid_value", "/broker/host_path"),
    (_s3(nfs_path="a:/b"), "unknown_field", "/broker/nfs_path"),
]


@pytest.mark.parametrize(("config", "name", "path"), BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_configurations_name_the_field(config, name, path):
    result = brokers.validate_configuration(config, check_access=False)
    assert not result.is_valid
    assert {"name": name, "path": path} in [{"name": e["name"], "path": e["path"]} for e in result.errors], result.errors
    for error in result.errors:
        assert set(error) == {"name", "description", "path"}
        assert "jsonschema" not in error["description"] and "is not valid under" not in error["description"]
        assert SECRET not in error["description"]


def test_bad_configuration_count():
    assert len(BAD) >= 30


def test_all_errors_reported_at_once():
    config = {"version": "9", "broker": {"type": "s3", "bucket_name": "x", "region_name": 1, "nfs_path": "a:/b",
                                         "credentials": {"access_key_id": ACCESS}}}
    names = sorted((e["path"], e["name"]) for e in brokers.validate_configuration(config).errors)
    assert names == [
        ("/broker/bucket_name", "invalid_value"),
        ("/broker/credentials/secret_access_key", "missing_field"),
        ("/broker/nfs_path", "unknown_field"),
        ("/broker/region_name", "wrong_type"),
        ("/version", "unsupported_version"),
    ]


def test_messages_read_like_sentences():
    errors = brokers.validate_configuration({"broker": {"type": "host", "host_path": "rel"}}).errors
    assert errors[0]["description"] == "broker.host_path must be an absolute path (starting with '/')"
    errors = brokers.validate_configuration({"broker": {"type": "nfs"}}).errors
    assert errors[0]["description"] == "broker.nfs_path is required for an nfs broker"


@pytest.mark.parametrize("value", [None, 0, 1.5, True, [], [1, 2], "", "   ", "{", "[1]", "null", "\x00", b"\xff\xfe",
                                   "x" * (10 * 1024 * 1024), "{" * 100000, object(), {"broker": {"type": {}}}])
def test_never_raises(value):
    result = brokers.validate_configuration(value)
    assert result.is_valid is False
    assert result.errors and all(set(e) == {"name", "description", "path"} for e in result.errors)
    json.dumps(result.to_dict())


def test_input_forms(tmp_path):
    config = {"broker": {"type": "host", "host_path": str(tmp_path)}}
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(config))
    for source in (config, json.dumps(config), json.dumps(config).encode(), path, str(path)):
        assert brokers.validate_configuration(source).to_dict() == {"is_valid": True, "errors": [], "warnings": []}
        assert brokers.load_configuration(source).broker.host_path == str(tmp_path)
    missing = brokers.validate_configuration(tmp_path / "nope.json").errors
    assert missing[0]["name"] == "unreadable_file"
    path.write_text("{not json")
    assert brokers.validate_configuration(path).errors[0]["name"] == "invalid_json"


def test_load_configuration_raises_with_every_error():
    with pytest.raises(brokers.InvalidConfiguration) as info:
        brokers.load_configuration({"broker": {"type": "nfs", "nfs_path": "x", "nfs_port": -1}})
    assert {e["path"] for e in info.value.errors} == {"/broker/nfs_path", "/broker/nfs_port"}
    assert isinstance(info.value, ValueError)
    assert "broker.nfs_path" in str(info.value)


def test_warnings(tmp_path):
    host = {"broker": {"type": "host", "host_path": str(tmp_path)}}
    nfs = {"broker": {"type": "nfs", "nfs_path": "server:/export"}}
    warnings = brokers.validate_configuration(nfs, previous=host).warnings
    assert warnings == [{"name": "broker_type", "description": "Changing the broker type may disrupt queued/running jobs.",
                         "path": "/broker/type"}]
    assert brokers.validate_configuration(host, previous=host).warnings == []
    assert brokers.validate_configuration(host, previous="{broken").warnings == []
    missing = brokers.validate_configuration({"broker": {"type": "host", "host_path": str(tmp_path / "gone")}})
    assert missing.is_valid and [w["name"] for w in missing.warnings] == ["host_path_missing"]
    s3 = _s3(credentials={"access_key_id": ACCESS, "secret_access_key": SECRET})
    result = brokers.validate_configuration(s3, check_access=False)
    assert [w["name"] for w in result.warnings] == ["inline_credentials"]
    assert SECRET not in json.dumps(result.to_dict()) and ACCESS not in json.dumps(result.to_dict())


def test_secrets_never_shown():
    config = brokers.load_configuration(_s3(credentials={"access_key_id": ACCESS, "secret_access_key": SECRET}))
    for text in (repr(config), str(config), repr(config.broker), str(config.broker.credentials),
                 json.dumps(config.to_dict())):
        assert SECRET not in text and ACCESS not in text
    assert config.to_dict()["broker"]["credentials"] == {"access_key_id": brokers.MASK, "secret_access_key": brokers.MASK}
    assert config.to_dict(mask=False)["broker"]["credentials"]["secret_access_key"] == SECRET
    with pytest.raises(brokers.InvalidConfiguration) as info:
        brokers.load_configuration(_s3(bucket_name="x", credentials={"access_key_id": ACCESS, "secret_access_key": SECRET}))
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.errors)


def test_typed_configs_mirror_the_schema():
    """The dataclasses and the JSON Schema cannot drift apart."""
    defs = schema()["$defs"]
    for kind, cls in BUILTIN_CONFIGS.items():
        schema_fields = set(defs[f"{kind}_broker"]["properties"]) - {"type"}
        assert {f.name for f in fields(cls)} == schema_fields, kind
        assert set(defs[f"{kind}_broker"]["required"]) - {"type"} <= {
            f.name for f in fields(cls) if f.default in ("", None) and f.name != "total_size"}
    assert schema()["properties"]["broker"]["properties"]["type"]["enum"] == sorted(BUILTIN_CONFIGS)
    creds = defs["s3_broker"]["properties"]["credentials"]["properties"]
    assert {f.name for f in fields(Credentials)} == set(creds)
    assert all(v.get("x-secret") for v in creds.values())


def test_typed_values():
    config = brokers.load_configuration(DOCUMENTED_EXAMPLES[8])
    assert isinstance(config.broker, NfsConfig)
    assert config.broker.server == "2001:db8::1" and config.broker.export == "/exports/ws/sub"
    assert config.broker.mount_options == ("hard", "nfsvers=4.1")
    assert config.version == "6"
    s3 = brokers.load_configuration(DOCUMENTED_EXAMPLES[2]).broker
    assert isinstance(s3, S3Config) and s3.credentials == Credentials(ACCESS, SECRET)
    assert brokers.load_configuration(_host()).version == "7"
    assert pickle.loads(pickle.dumps(brokers.load_configuration(_host()))) == brokers.load_configuration(_host())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
broker_like = st.fixed_dictionaries(
    {"broker": st.fixed_dictionaries({"type": st.sampled_from(["host", "nfs", "s3", "x"])},
                                     optional={k: json_values for k in (
                                         "host_path", "nfs_path", "bucket_name", "credentials", "prefix",
                                         "endpoint_url", "nfs_port", "mount_options", "total_size", "region_name")})},
    optional={"version": json_values, "workspace": json_values},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, broker_like, st.text(max_size=200), st.binary(max_size=64)))
def test_arbitrary_json_never_raises(value):
    result = brokers.validate_configuration(value, check_access=False)
    data = result.to_dict()
    assert isinstance(data["is_valid"], bool)
    assert data["is_valid"] == (not data["errors"])
    for item in data["errors"] + data["warnings"]:
        assert set(item) == {"name", "description", "path"}
        assert item["path"] == "" or item["path"].startswith("/")
    if data["is_valid"]:
        brokers.load_configuration(value)
    else:
        with pytest.raises(brokers.InvalidConfiguration):
            brokers.load_configuration(value)


def test_configuration_schema_is_the_top_level_file():
    on_disk = json.loads((Path(__file__).parents[1] / "schemas" / "workspace_configuration.json").read_text())
    given = brokers.configuration_schema()
    assert given == on_disk
    assert given["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert given["$id"].endswith("/workspace_configuration.json")
    given["properties"].clear()  # a copy: the validator's own schema is untouched
    assert brokers.configuration_schema() == on_disk
    assert Path(brokers.__file__).with_name("py.typed").exists()
