"""The service never signs for a user-chosen endpoint with its own AWS identity, nor contacts one not allowed.

A real HTTP listener on loopback stands for an internal address: it records every connection and request head.
The service runs in this process with ambient AWS credentials in its environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), as on a host with an instance role or exported keys.
"""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from brokers.config import AccessPolicy
from brokers.core.retry import RetryPolicy

AMBIENT_KEY = "AKIAAMBIENTSERVICE42"
AMBIENT_SECRET = "ambient-secret-never-sent-Zk3"
AMBIENT_TOKEN = "ambient-session-token-Qq7"
CONFIGURED_KEY = "AKIACONFIGUREDKEY007"

# The database plays no part here: one is enough.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def ambient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AMBIENT_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AMBIENT_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", AMBIENT_TOKEN)


def s3(endpoint: str, **extra: object) -> dict:
    return {"broker": {"type": "s3", "bucket_name": "internal-bucket", "region_name": "us-east-1",
                       "endpoint_url": endpoint, **extra}}


def validate(service, configuration: dict) -> dict:
    response = service.client.post("/v6/workspaces/validation/", json={"title": "T", "configuration": configuration})
    assert response.status_code == 200, response.text
    return response.json()


def access_warnings(result: dict) -> list[str]:
    return [w["description"] for w in result["warnings"] if w["name"] == "bucket_access"]


def ambient_in(heads: list[bytes]) -> list[bytes]:
    return [h for h in heads if AMBIENT_KEY.encode() in h or AMBIENT_TOKEN.encode() in h]


def header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.encode():
            return value.strip().decode()
    return None


@sqlite_only
def test_an_endpoint_outside_the_allow_list_is_never_contacted(start_service, http_listener) -> None:
    service = start_service(check_access=True, s3_endpoint_allow=("http://127.0.0.1:1",))
    with_keys = s3(http_listener.url, credentials={"access_key_id": CONFIGURED_KEY, "secret_access_key": "k"})
    for configuration in (s3(http_listener.url), with_keys, s3(http_listener.url + "/path/")):
        result = validate(service, configuration)
        assert result["is_valid"] is True
        [warning] = access_warnings(result)
        assert f"at {http_listener.url}" in warning and "not allowed by this deployment" in warning
    assert http_listener.connections == []


@sqlite_only
def test_the_default_deployment_contacts_no_custom_endpoint(start_service, http_listener) -> None:
    service = start_service(check_access=True, s3_endpoint_allow=())
    [warning] = access_warnings(validate(service, s3(http_listener.url)))
    assert "not allowed by this deployment" in warning
    assert http_listener.connections == []


@sqlite_only
def test_the_checked_host_is_the_contacted_host(start_service, http_listener) -> None:
    """URL parsers disagree on ``\\@``: the allow-list and the HTTP client must see the same host."""
    from tests.fixtures.service import HttpListener

    allowed = HttpListener()
    try:
        service = start_service(check_access=True, s3_endpoint_allow=(allowed.url,))
        tricky = f"http://127.0.0.1:{http_listener.port}\\@127.0.0.1:{allowed.port}"
        validate(service, s3(tricky))
        assert http_listener.connections == []
        assert allowed.heads  # what was allowed is what was asked
    finally:
        allowed.close()


@sqlite_only
def test_validation_without_configured_keys_is_anonymous(start_service, http_listener) -> None:
    service = start_service(check_access=True, s3_endpoint_allow=(http_listener.url,))
    result = validate(service, s3(http_listener.url))
    assert access_warnings(result) == []  # the listener answers HeadBucket with 200
    heads = http_listener.heads
    assert heads and all(h.startswith(b"HEAD /internal-bucket") for h in heads)
    assert [header(h, "authorization") for h in heads] == [None] * len(heads)
    assert [header(h, "x-amz-security-token") for h in heads] == [None] * len(heads)
    assert ambient_in(heads) == []


@sqlite_only
def test_configured_keys_are_used_and_the_ambient_token_is_not(start_service, http_listener) -> None:
    service = start_service(check_access=True, s3_endpoint_allow=(http_listener.url,))
    validate(service, s3(http_listener.url, credentials={"access_key_id": CONFIGURED_KEY,
                                                        "secret_access_key": "configured-secret"}))
    heads = http_listener.heads
    assert heads and all(f"Credential={CONFIGURED_KEY}/" in (header(h, "authorization") or "") for h in heads)
    assert ambient_in(heads) == []


@sqlite_only
def test_ambient_credentials_are_an_explicit_opt_in(start_service, http_listener) -> None:
    service = start_service(check_access=True, s3_endpoint_allow=(http_listener.url,), s3_ambient_credentials=True)
    validate(service, s3(http_listener.url))
    heads = http_listener.heads
    assert heads and all(f"Credential={AMBIENT_KEY}/" in (header(h, "authorization") or "") for h in heads)
    assert all(header(h, "x-amz-security-token") == AMBIENT_TOKEN for h in heads)


@sqlite_only
def test_the_usage_scan_never_contacts_a_refused_endpoint(start_service, http_listener, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="brokers.service.jobs")
    service = start_service(s3_endpoint_allow=())
    created = service.client.post("/v6/workspaces/", json={"title": "Internal", "configuration": s3(http_listener.url)})
    assert created.status_code == 201, created.text
    service.app.state.service.jobs.scan([created.json()["id"]])
    service.wait_for(lambda: "ended in error" in caplog.text, timeout=20)
    assert "not allowed by this deployment" in caplog.text
    assert http_listener.connections == []


@sqlite_only
def test_the_usage_scan_measures_anonymously(start_service, http_listener) -> None:
    service = start_service(s3_endpoint_allow=(http_listener.url,))
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Public", "configuration": s3(http_listener.url)}
                                ).json()["id"]
    service.app.state.service.jobs.scan([ws_id])
    shown = service.wait_for(lambda: (b := service.client.get(f"/v6/workspaces/{ws_id}/").json())["usage_measured"]
                             and b, timeout=20)
    assert shown["used_size"] == 0  # the listener's empty listing
    heads = http_listener.heads
    assert heads and all(h.startswith(b"GET /internal-bucket") for h in heads)
    assert [header(h, "authorization") for h in heads] == [None] * len(heads)
    assert ambient_in(heads) == []


@sqlite_only
def test_an_allowed_store_with_configured_keys_works(start_service, s3_server, s3_config, make_s3_broker) -> None:
    make_s3_broker().write_bytes("a", b"a" * 123)
    service = start_service(check_access=True, s3_endpoint_allow=(s3_server.endpoint,))
    result = validate(service, s3_config)
    assert result["is_valid"] is True and access_warnings(result) == []
    mark = s3_server.mark()
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Moto", "configuration": s3_config}).json()["id"]
    shown = service.wait_for(lambda: (b := service.client.get(f"/v6/workspaces/{ws_id}/").json())["usage_measured"]
                             and b, timeout=20)
    assert shown["used_size"] == 123
    auth = [r.headers.get("authorization", "") for r in s3_server.since(mark) if r.by_broker]
    assert auth and all(f"Credential={s3_config['broker']['credentials']['access_key_id']}/" in a for a in auth)


def test_allow_patterns() -> None:
    policy = AccessPolicy(endpoint_allow=("https://*.example.com", "http://127.0.0.1:*", "http://[::1]:9000",
                                          "https://s3.internal"))
    allowed = ["https://a.example.com", "https://a.b.example.com:443/x", "HTTPS://A.Example.COM",
               "http://127.0.0.1:1", "http://127.0.0.1", "http://[::1]:9000", "https://s3.internal:443",
               "https://u:pw@s3.internal/"]
    refused = ["https://example.com", "http://a.example.com", "https://a.example.com:8443",
               "https://a.example.com.evil.org", "http://127.0.0.2:1", "https://127.0.0.1:1",
               "http://[::1]:9001", "https://s3.internal:8443", "http://s3.internal", "ftp://s3.internal",
               "https://s3.internal\\@evil.org", "not a url", "https://s3.internal:99999"]
    assert [u for u in allowed if not policy.endpoint_allowed(u)] == []
    assert [u for u in refused if policy.endpoint_allowed(u)] == []
    assert AccessPolicy().endpoint_allowed("http://anything:1")  # the library's default: unrestricted
    assert not AccessPolicy(endpoint_allow=()).endpoint_allowed("http://127.0.0.1:1")
    assert AccessPolicy(endpoint_allow=()).endpoint_allowed(None)  # the store's own (AWS) endpoint
    for bad in ("127.0.0.1:9000", "http://", "http://h/path", "http://h:port", "ftp://h", "http://u@h",
                "http://*h", "http://a.*.com"):
        with pytest.raises(ValueError, match=r"^endpoint pattern "):
            AccessPolicy(endpoint_allow=(bad,))


class Responder:
    """A TCP server on loopback that answers every connection with ``reply`` (None: say nothing, hold it open)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.reply is None:
                self.held.append(conn)
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@sqlite_only
def test_what_listens_where_is_not_told(start_service) -> None:
    """Refused, silent, not HTTP, not S3: one wording, so validation is no port scanner."""
    from tests.fixtures.s3 import free_port

    responders = [Responder(None), Responder(b""), Responder(b"SSH-2.0-OpenSSH_9.2\r\n"),
                  Responder(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")]
    try:
        urls = [f"http://127.0.0.1:{free_port()}", *(r.url for r in responders)]
        service = start_service(check_access=True, s3_endpoint_allow=("http://127.0.0.1:*",))
        reasons = set()
        for url in urls:
            [warning] = access_warnings(validate(service, s3(url)))
            assert warning.startswith(f"bucket 'internal-bucket' at {url} cannot be reached: ")
            reasons.add(warning.removeprefix(f"bucket 'internal-bucket' at {url} cannot be reached: "))
        assert len(reasons) == 1, reasons
        assert "no S3 answer from the endpoint" in reasons.pop()
    finally:
        for responder in responders:
            responder.close()


@pytest.fixture
def nfs_listener():
    """A port that counts who connects and closes each connection at once (no NFS server)."""
    from tests.fixtures.service import HttpListener

    listener = HttpListener(answer=False)
    yield listener
    listener.close()


def nfs(port: int) -> dict:
    return {"broker": {"type": "nfs", "nfs_path": "127.0.0.1:/internal", "nfs_version": "4.1", "nfs_port": port}}


def test_an_nfs_server_outside_the_allow_list_is_never_connected_to(nfs_listener) -> None:
    """Direct mode speaks NFS as the process's own uid/gid: a service connects only to servers it allows."""
    import brokers

    with pytest.raises(brokers.AccessDenied, match=r"NFS server 127\.0\.0\.1 is not allowed by this deployment"):
        brokers.get_broker(nfs(nfs_listener.port), policy=AccessPolicy(nfs_server_allow=("*.example.com",)))
    assert nfs_listener.connections == []
    allowed = brokers.get_broker(nfs(nfs_listener.port), policy=AccessPolicy(nfs_server_allow=("127.0.0.1",)))
    allowed.files.pool.retry = RetryPolicy(attempts=1)  # the listener is no NFS server: one try shows the contact
    with pytest.raises(brokers.StorageUnavailable):
        allowed.usage()
    assert nfs_listener.connections  # the same configuration, allowed, does connect
    with pytest.raises(ValueError, match="NFS server pattern"):
        AccessPolicy(nfs_server_allow=("nfs://host",))


@sqlite_only
def test_the_usage_scan_never_connects_to_an_nfs_server_not_allowed(start_service, nfs_listener,
                                                                         caplog) -> None:
    caplog.set_level(logging.WARNING, logger="brokers.service.jobs")
    service = start_service(nfs_server_allow=())
    created = service.client.post("/v6/workspaces/", json={"title": "Internal NFS",
                                                           "configuration": nfs(nfs_listener.port)})
    assert created.status_code == 201, created.text
    service.app.state.service.jobs.scan([created.json()["id"]])
    service.wait_for(lambda: "ended in error" in caplog.text, timeout=20)
    assert "not allowed by this deployment" in caplog.text
    assert nfs_listener.connections == []
