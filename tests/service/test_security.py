"""Tokens, masked secrets (PATCH keeps the stored one), encryption at rest, no secret in bodies or logs."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.service import WRITER_TOKEN

ACCESS = "AKIASERVICETEST0001"
SECRET = "service-secret-Vb7-never-shown"
S3 = {"broker": {"type": "s3", "bucket_name": "bucket", "region_name": "us-east-1",
                 "endpoint_url": "http://127.0.0.1:9",
                 "credentials": {"access_key_id": ACCESS, "secret_access_key": SECRET}}}
HOST = {"broker": {"type": "host", "host_path": "/data"}}
MASKED = {"access_key_id": "************", "secret_access_key": "************"}


def stored_configuration(service, ws_id: int) -> dict:
    engine = create_engine(service.settings.url)
    try:
        with engine.connect() as conn:
            return json.loads(conn.execute(text("SELECT configuration FROM workspace WHERE id = :i"),
                                           {"i": ws_id}).scalar_one())
    finally:
        engine.dispose()


def test_writes_need_a_valid_token(service) -> None:
    body = {"title": "T", "configuration": HOST}
    missing = service.anonymous.post("/v6/workspaces/", json=body)
    assert missing.status_code == 401
    assert missing.json()["errors"][0] == {"name": "missing_token", "field": "X-Access-Token", "location": "header",
                                           "description": missing.json()["detail"]}
    wrong = service.anonymous.post("/v6/workspaces/", json=body, headers={"X-Access-Token": WRITER_TOKEN + "x"})
    assert wrong.status_code == 403
    assert wrong.json()["errors"][0]["name"] == "invalid_token"
    assert WRITER_TOKEN not in wrong.text
    ws_id = service.client.post("/v6/workspaces/", json=body).json()["id"]
    assert service.anonymous.patch(f"/v6/workspaces/{ws_id}/", json={"title": "U"}).status_code == 401


def test_reads_need_a_token_unless_public(start_service) -> None:
    private = start_service()
    ws_id = private.client.post("/v6/workspaces/", json={"title": "T", "configuration": HOST}).json()["id"]
    for path in ("/v6/workspaces/", f"/v6/workspaces/{ws_id}/"):
        assert private.anonymous.get(path).status_code == 401
        assert private.client.get(path).status_code == 200
    validation = {"title": "T", "configuration": HOST}
    assert private.anonymous.post("/v6/workspaces/validation/", json=validation).status_code == 401
    public = start_service(public_reads=True)
    assert public.anonymous.get("/v6/workspaces/").status_code == 200
    assert public.anonymous.get(f"/v6/workspaces/{ws_id}/").status_code == 200
    assert public.anonymous.post("/v6/workspaces/validation/", json=validation).json()["is_valid"] is True
    assert public.anonymous.post("/v6/workspaces/", json=validation).status_code == 401


def test_without_tokens_the_service_is_read_only(start_service) -> None:
    service = start_service(tokens=(), public_reads=True)
    response = service.client.post("/v6/workspaces/", json={"title": "T", "configuration": HOST})
    assert response.status_code == 403
    assert response.json()["errors"][0]["name"] == "read_only"


def test_secrets_are_masked_and_encrypted_at_rest(service) -> None:
    created = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3})
    assert created.status_code == 201
    for body in (created.text, service.client.get(f"/v6/workspaces/{created.json()['id']}/").text,
                 service.client.get("/v6/workspaces/").text):
        assert SECRET not in body and ACCESS not in body
    assert created.json()["configuration"]["broker"]["credentials"] == MASKED
    at_rest = stored_configuration(service, created.json()["id"])
    credentials = at_rest["broker"]["credentials"]
    assert credentials["secret_access_key"].startswith("enc:fernet:")
    assert credentials["access_key_id"].startswith("enc:fernet:")
    assert SECRET not in json.dumps(at_rest)
    assert at_rest["broker"]["bucket_name"] == "bucket"  # the rest stays readable


def test_patching_the_masked_value_back_keeps_the_secret(service) -> None:
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    shown = service.client.get(f"/v6/workspaces/{ws_id}/").json()["configuration"]
    shown["broker"]["region_name"] = "eu-west-1"
    assert service.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": shown}).status_code == 204
    opened = service.app.state.service.box.open(stored_configuration(service, ws_id))
    assert opened["broker"]["credentials"] == {"access_key_id": ACCESS, "secret_access_key": SECRET}
    assert opened["broker"]["region_name"] == "eu-west-1"
    # A new secret replaces the old one.
    shown["broker"]["credentials"]["secret_access_key"] = "rotated-secret"
    assert service.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": shown}).status_code == 204
    opened = service.app.state.service.box.open(stored_configuration(service, ws_id))
    assert opened["broker"]["credentials"] == {"access_key_id": ACCESS, "secret_access_key": "rotated-secret"}


def test_masked_secret_is_not_carried_to_another_endpoint(service) -> None:
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    shown = service.client.get(f"/v6/workspaces/{ws_id}/").json()["configuration"]
    shown["broker"]["endpoint_url"] = "http://attacker.example:9000"
    response = service.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": shown})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "configuration.broker.credentials.access_key_id"
    assert SECRET not in response.text


def test_creating_with_a_masked_secret_is_refused(service) -> None:
    config = {"broker": {**S3["broker"], "credentials": MASKED}}
    response = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": config})
    assert response.status_code == 400
    assert response.json()["errors"][0]["name"] == "masked_secret"


def test_validation_with_name_uses_the_stored_secret(service) -> None:
    service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3})
    shown = service.client.get("/v6/workspaces/", params={"name": "bucket"}).json()["results"][0]
    config = service.client.get(f"/v6/workspaces/{shown['id']}/").json()["configuration"]
    body = service.client.post("/v6/workspaces/validation/",
                               json={"name": "bucket", "title": "Bucket", "configuration": config}).json()
    assert body["is_valid"] is True, body
    without_name = service.client.post("/v6/workspaces/validation/",
                                       json={"title": "Bucket", "configuration": config}).json()
    assert without_name["is_valid"] is False
    assert without_name["errors"][0]["name"] == "masked_secret"


def test_no_secret_in_error_bodies_or_logs(service, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bad = {"broker": {**S3["broker"], "bucket_name": "", "unknown": SECRET,
                      "credentials": {"access_key_id": ACCESS, "secret_access_key": 12}}}
    response = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": bad})
    assert response.status_code == 400
    assert SECRET not in response.text and ACCESS not in response.text
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    service.app.state.service.jobs.scan([ws_id])  # measuring fails: nothing listens on port 9
    service.wait_for(lambda: "ended in error" in caplog.text, timeout=30)
    assert SECRET not in caplog.text and ACCESS not in caplog.text
    # Nor in what the failed job recorded: its stats, history and log lines.
    jobs = service.client.get(f"/workspaces/{ws_id}/jobs?load_full_structure=1")
    failed = [j for j in jobs.json()["workspace_jobs"] if j["status"] == "error"]
    assert failed and failed[0]["stats"]["error"]
    recorded = [jobs.text] + [service.client.get(f"/workspaces/{ws_id}/jobs/{j['id']}/{what}").text
                              for j in failed for what in ("logs", "history")]
    assert all(SECRET not in text and ACCESS not in text for text in recorded)


def test_rotating_the_secret_key(start_service) -> None:
    first = start_service(secret_keys=("old-key",))
    ws_id = first.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    before = stored_configuration(first, ws_id)["broker"]["credentials"]["secret_access_key"]
    second = start_service(secret_keys=("new-key", "old-key"))  # startup re-encrypts with the first key
    after = stored_configuration(second, ws_id)["broker"]["credentials"]["secret_access_key"]
    assert before != after
    from brokers.service.security import SecretBox

    config = stored_configuration(second, ws_id)
    assert SecretBox(["new-key"]).open(config)["broker"]["credentials"]["secret_access_key"] == SECRET


@pytest.mark.parametrize("body, field", [
    ({"configuration": HOST}, "title"),
    ({"title": "T"}, "configuration"),
    ({"title": "T", "configuration": "not an object"}, "configuration"),
    ({"title": "T", "configuration": [1]}, "configuration"),
    ({"title": "T", "configuration": {"broker": {"type": "host"}}}, "configuration.broker.host_path"),
    ({"title": "T", "configuration": HOST, "is_active": "yes"}, "is_active"),
    ({"title": "T", "configuration": HOST, "is_active": 1}, "is_active"),
    ({"title": "  ", "configuration": HOST}, "title"),
    ({"title": 5, "configuration": HOST}, "title"),
    ({"title": "T", "configuration": HOST, "base_url": "not a url"}, "base_url"),
    ({"title": "T", "configuration": HOST, "colour": "red"}, "colour"),
])
def test_bad_create_bodies_are_400_naming_the_field(service, body, field) -> None:
    response = service.client.post("/v6/workspaces/", json=body)
    assert response.status_code == 400, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_bad_bodies_that_are_not_objects(service) -> None:
    for content in (b"[]", b"null", b"{", b"\xff"):
        response = service.client.post("/v6/workspaces/", content=content,
                                       headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (content, response.text)
        assert response.json()["errors"]


def test_patch_rules(service) -> None:
    ws_id = service.client.post("/v6/workspaces/", json={"title": "T", "description": "d", "base_url": "http://h/x",
                                                         "configuration": HOST}).json()["id"]
    url = f"/v6/workspaces/{ws_id}/"
    assert service.client.patch(url, json={"description": None, "base_url": None}).status_code == 204
    body = service.client.get(url).json()
    assert (body["description"], body["base_url"]) == (None, None)
    for field in ("title", "is_active", "configuration"):
        response = service.client.patch(url, json={field: None})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == field
    assert service.client.patch(url, json={"is_active": False}).status_code == 204
    deprecated = service.client.get(url).json()
    assert deprecated["is_active"] is False and deprecated["deprecated"]
    assert service.client.patch(url, json={"is_active": False}).status_code == 204
    assert service.client.get(url).json()["deprecated"] == deprecated["deprecated"]  # the first time is kept
    assert service.client.patch(url, json={"is_active": True}).status_code == 204
    assert service.client.get(url).json()["deprecated"] is None
    bad = service.client.patch(url, json={"configuration": {"broker": {"type": "cloud"}}})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "configuration.broker.type"


@pytest.mark.parametrize("ws_id", ["999", "0", "-1", "99999999999999999999"])
def test_unknown_workspace_is_404(service, ws_id) -> None:
    for method in ("GET", "PATCH"):
        response = service.client.request(method, f"/v6/workspaces/{ws_id}/", json={"title": "x"})
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "id"


def test_non_numeric_id_is_400(service) -> None:
    response = service.client.get("/v6/workspaces/abc/")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"name": "wrong_type", "description": "id must be a whole number",
                                            "field": "id", "location": "path"}


def test_names_are_unique_slugs(service) -> None:
    names = [service.client.post("/v6/workspaces/", json={"title": t, "configuration": HOST}).json()["name"]
             for t in ("Raw Source", "raw source!", "RAW-SOURCE", "Éléphant Über", "???", "x" * 100, "x" * 100)]
    assert names == ["raw-source", "raw-source-2", "raw-source-3", "elephant-uber", "workspace", "x" * 50,
                     "x" * 48 + "-2"]


def test_validation_always_answers_200(service) -> None:
    cases = [
        ({"configuration": HOST}, "missing_field", "/title"),
        ({"title": "T"}, "missing_field", "/configuration"),
        ({"title": "T", "configuration": "x"}, "wrong_type", "/configuration"),
        ({"title": "T", "configuration": {"broker": {"type": "host"}}}, "missing_field",
         "/configuration/broker/host_path"),
    ]
    for body, name, path in cases:
        response = service.client.post("/v6/workspaces/validation/", json=body)
        assert response.status_code == 200
        result = response.json()
        assert result["is_valid"] is False
        assert (name, path) in [(e["name"], e["path"]) for e in result["errors"]], result
    for raw in (b"[1]", b"{"):
        response = service.client.post("/v6/workspaces/validation/", content=raw)
        assert response.status_code == 200 and response.json()["is_valid"] is False
    unknown = service.client.post("/v6/workspaces/validation/",
                                  json={"name": "nope", "title": "T", "configuration": HOST}).json()
    assert unknown["is_valid"] is True
    assert unknown["warnings"][0]["name"] == "unknown_workspace"


def test_restart_with_the_same_key_leaves_stored_secrets_alone(start_service) -> None:
    first = start_service(secret_keys=("key-a",))
    ws_id = first.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    before = stored_configuration(first, ws_id)
    second = start_service(secret_keys=("key-a",))
    assert stored_configuration(second, ws_id) == before


def test_plain_secrets_get_encrypted_when_a_key_is_configured(start_service) -> None:
    plain = start_service(secret_keys=())
    ws_id = plain.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    assert stored_configuration(plain, ws_id)["broker"]["credentials"]["secret_access_key"] == SECRET
    keyed = start_service(secret_keys=("key-b",))
    assert stored_configuration(keyed, ws_id)["broker"]["credentials"]["secret_access_key"].startswith("enc:fernet:")


def test_masked_secret_is_not_carried_to_another_bucket(service) -> None:
    ws_id = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    shown = service.client.get(f"/v6/workspaces/{ws_id}/").json()["configuration"]
    shown["broker"]["bucket_name"] = "someone-elses-bucket"
    response = service.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": shown})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "configuration.broker.credentials.access_key_id"
    assert "bucket_name" in error["description"]
    validation = service.client.post("/v6/workspaces/validation/",
                                     json={"name": "bucket", "title": "Bucket", "configuration": shown}).json()
    assert [e["name"] for e in validation["errors"]] == ["masked_secret"]


USERINFO_PASSWORD = "endpoint-pw-Hx4-never-shown"
WITH_USERINFO = {"broker": {**S3["broker"], "endpoint_url": f"http://gateway-user:{USERINFO_PASSWORD}@127.0.0.1:9/s3"}}


def test_endpoint_user_info_is_masked_and_sealed(service) -> None:
    created = service.client.post("/v6/workspaces/", json={"title": "Gateway", "configuration": WITH_USERINFO})
    assert created.status_code == 201, created.text
    ws_id = created.json()["id"]
    masked_url = "http://************@127.0.0.1:9/s3"
    assert created.json()["configuration"]["broker"]["endpoint_url"] == masked_url
    for body in (created.text, service.client.get(f"/v6/workspaces/{ws_id}/").text,
                 service.client.get("/v6/workspaces/").text):
        assert USERINFO_PASSWORD not in body and "gateway-user" not in body
    at_rest = stored_configuration(service, ws_id)["broker"]["endpoint_url"]
    assert at_rest.startswith("http://enc:fernet:") and at_rest.endswith("@127.0.0.1:9/s3")  # host stays readable
    assert USERINFO_PASSWORD not in at_rest
    # Sent back masked, the stored user info (and keys) stay; the host changed, nothing is carried over.
    shown = service.client.get(f"/v6/workspaces/{ws_id}/").json()["configuration"]
    shown["broker"]["region_name"] = "eu-west-1"
    assert service.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": shown}).status_code == 204
    opened = service.app.state.service.box.open(stored_configuration(service, ws_id))
    assert opened["broker"]["endpoint_url"] == WITH_USERINFO["broker"]["endpoint_url"]
    assert opened["broker"]["credentials"]["secret_access_key"] == SECRET
    moved = {"broker": {**shown["broker"], "endpoint_url": "http://************@attacker.example:9/s3",
                        "credentials": {"access_key_id": "new", "secret_access_key": "new"}}}
    response = service.client.patch(f"/v6/workspaces/{ws_id}/", json={"configuration": moved})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "configuration.broker.endpoint_url"


def test_encrypted_values_are_not_accepted_from_clients(service) -> None:
    """A ciphertext is a stored secret too: sent by a client it must not open into another workspace."""
    first = service.client.post("/v6/workspaces/", json={"title": "Bucket", "configuration": S3}).json()["id"]
    sealed = stored_configuration(service, first)["broker"]["credentials"]
    copied = {"broker": {**S3["broker"], "bucket_name": "other-bucket", "credentials": sealed}}
    response = service.client.post("/v6/workspaces/", json={"title": "Copy", "configuration": copied})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "configuration.broker.credentials.access_key_id"
    validation = service.client.post("/v6/workspaces/validation/", json={"title": "Copy", "configuration": copied})
    assert validation.json()["is_valid"] is False


def test_passphrases_are_stretched_with_scrypt_and_old_ciphertexts_still_open(tmp_path) -> None:
    import base64
    import hashlib
    import subprocess
    import sys

    from cryptography.fernet import Fernet, InvalidToken

    from brokers.service.security import SecretBox

    passphrase = "a passphrase, not a Fernet key"
    config = {"broker": {"type": "s3", "bucket_name": "b", "credentials": {"access_key_id": ACCESS,
                                                                            "secret_access_key": SECRET}}}
    sealed = SecretBox([passphrase]).seal(config)
    token = sealed["broker"]["credentials"]["secret_access_key"].removeprefix("enc:fernet:").encode()
    bare_sha256 = Fernet(base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest()))
    with pytest.raises(InvalidToken):
        bare_sha256.decrypt(token)
    # The same passphrase gives the same key in another process.
    code = ("import json, sys; from brokers.service.security import SecretBox; "
            "print(json.dumps(SecretBox([sys.argv[1]]).open(json.loads(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", code, passphrase, json.dumps(sealed)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout) == config
    # A database sealed by the old derivation (bare SHA-256) still opens, and sealing again upgrades it.
    legacy = {"broker": {**config["broker"], "credentials": {
        "access_key_id": "enc:fernet:" + bare_sha256.encrypt(ACCESS.encode()).decode(),
        "secret_access_key": "enc:fernet:" + bare_sha256.encrypt(SECRET.encode()).decode()}}}
    box = SecretBox([passphrase])
    assert box.open(legacy) == config
    upgraded = box.seal(legacy)
    with pytest.raises(InvalidToken):
        bare_sha256.decrypt(upgraded["broker"]["credentials"]["secret_access_key"].removeprefix("enc:fernet:").encode())
    assert box.open(upgraded) == config
    # A real Fernet key is used as it is.
    key = Fernet.generate_key()
    as_key = SecretBox([key.decode()]).seal(config)["broker"]["credentials"]["secret_access_key"]
    assert Fernet(key).decrypt(as_key.removeprefix("enc:fernet:").encode()) == SECRET.encode()
