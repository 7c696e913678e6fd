"""A database written by the landed service (commit 5b59609, schema 0001) migrates with everything intact.

``data/landed_0001.json`` holds every ``workspace`` row that version wrote through its own API (made by
``data/make_landed_0001.py``: host, NFS, S3 with sealed keys and endpoint user info, one archived; measured).
Each test builds schema 0001 with its migration, inserts those rows as they were, and starts today's service
on it (which migrates to the newest schema).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text

from brokers.service.db import HEAD, make_engine, run_migrations
from brokers.service.db.models import SERVICE_USER, User, UTCDateTime, Workspace, WorkspaceHistory
from brokers.service.security import SecretBox
from brokers.service.store.users import add_user
from tests.fixtures.service import WRITER_TOKEN

FIXTURE = json.loads((Path(__file__).parent / "data" / "landed_0001.json").read_text())
ROWS: list[dict[str, Any]] = FIXTURE["workspace"]
PLAIN: dict[int, dict[str, Any]] = {int(k): v for k, v in FIXTURE["plain_configurations"].items()}
TIMES = ("created", "deprecated", "last_modified", "usage_measured")
MASK = "************"
SECRETS = ("AKIALANDED0001EXAMPLE", "landed/0001/secret+AccessKey/EXAMPLE", "landed-endpoint-pa55")
_TABLE = sa.table("workspace", *[sa.column(name, UTCDateTime() if name in TIMES else None) for name in ROWS[0]])


def moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def iso_z(value: str | None) -> str | None:
    """The fixture's time as the Scale APIs show it."""
    found = moment(value)
    return None if found is None else found.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def write_landed_database(url: str) -> None:
    """Schema 0001 from its migration, then the landed rows as that version stored them."""
    engine = make_engine(url)
    try:
        run_migrations(engine, "0001")
        with engine.begin() as conn:
            conn.execute(_TABLE.insert(), [{k: moment(v) if k in TIMES else v for k, v in row.items()}
                                           for row in ROWS])
            if engine.dialect.name == "postgresql":  # as the landed inserts left it: the id sequence at the last id
                conn.execute(text("SELECT setval(pg_get_serial_sequence('workspace', 'id'), "
                                  "(SELECT max(id) FROM workspace))"))
            assert list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == ["0001"]
    finally:
        engine.dispose()


@pytest.fixture
def migrated(database_url, start_service):
    """Today's service on the landed database, with the landed secret key; measuring off (nothing may change)."""
    write_landed_database(database_url)
    return start_service(secret_keys=(FIXTURE["secret_key"],), usage_interval=0)


def test_the_fixture_is_what_the_landed_version_wrote() -> None:
    assert FIXTURE["revision"] == "0001" and len(ROWS) == 4
    kinds = {json.loads(row["configuration"])["broker"]["type"] for row in ROWS}
    assert kinds == {"host", "nfs", "s3"}
    sealed = next(row["configuration"] for row in ROWS if "s3" in row["configuration"])
    assert sealed.count("enc:fernet:") == 3 and not any(secret in sealed for secret in SECRETS)
    assert any(row["deprecated"] and not row["is_active"] for row in ROWS)
    assert sum(row["used_size"] is not None for row in ROWS) == 3


def test_every_workspace_and_secret_is_kept_byte_for_byte(migrated) -> None:
    with migrated.app.state.service.sessions() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
        raw = {r.id: r.configuration for r in session.execute(text("SELECT id, configuration FROM workspace"))}
        stored = {ws.id: ws for ws in session.scalars(select(Workspace))}
    assert sorted(stored) == [row["id"] for row in ROWS]
    box = SecretBox((FIXTURE["secret_key"],))
    for row in ROWS:
        ws = stored[row["id"]]
        assert raw[row["id"]] == row["configuration"]  # the sealed text itself, not re-encrypted
        for field, value in row.items():
            assert getattr(ws, field) == (moment(value) if field in TIMES else value), (row["id"], field)
        assert box.open(json.loads(raw[row["id"]])) == PLAIN[row["id"]]


def test_the_apis_show_them_as_the_landed_version_did(migrated) -> None:
    v5_list = {r["id"]: r for r in migrated.client.get("/v5/workspaces/").json()["results"]}
    v6_list = {r["id"]: r for r in migrated.client.get("/v6/workspaces/").json()["results"]}
    assert sorted(v5_list) == sorted(v6_list) == [row["id"] for row in ROWS]
    for row in ROWS:
        ws_id = row["id"]
        v6 = migrated.client.get(f"/v6/workspaces/{ws_id}/")
        v5 = migrated.client.get(f"/v5/workspaces/{ws_id}/").json()
        expected = {k: row[k] for k in ("id", "name", "title", "description", "base_url", "is_active",
                                        "used_size", "total_size")}
        times = {k: iso_z(row[k]) for k in ("created", "last_modified")}
        assert v6.json() == {**v6.json(), **expected, **times, "deprecated": iso_z(row["deprecated"]),
                             "usage_measured": iso_z(row["usage_measured"])}
        assert v5 == {**v5, **expected, **times, "archived": iso_z(row["deprecated"])}
        assert v5_list[ws_id] == {k: v for k, v in v5.items() if k != "json_config"}
        assert v6_list[ws_id]["used_size"] == row["used_size"]
        plain = PLAIN[ws_id]
        shown = v6.json()["configuration"]
        assert shown == v5["json_config"]
        if plain["broker"]["type"] == "s3":
            assert shown["broker"]["credentials"] == {"access_key_id": MASK, "secret_access_key": MASK}
            assert shown["broker"]["endpoint_url"] == f"http://{MASK}@127.0.0.1:9"
            assert {**shown["broker"], "credentials": None, "endpoint_url": None} == {
                **plain["broker"], "credentials": None, "endpoint_url": None}
        else:
            assert shown == plain
        assert not any(secret in v6.text or secret in json.dumps(v5) for secret in SECRETS)
        assert v6.headers["ETag"] == '"1"'


def test_they_belong_to_the_service_user_with_one_migrate_row_each(migrated) -> None:
    with migrated.app.state.service.sessions() as session:
        service_id = session.scalar(select(User.id).where(User.name == SERVICE_USER))
        assert session.scalar(select(User.is_admin).where(User.id == service_id)) is True
        for ws in session.scalars(select(Workspace)):
            assert (ws.owner_id, ws.author_id, ws.version, ws.trashed) == (service_id, service_id, 1, None)
            history = list(session.scalars(select(WorkspaceHistory).where(WorkspaceHistory.workspace_id == ws.id)))
            assert [(h.action, h.user_id) for h in history] == [("migrate", service_id)]
            row = next(r for r in ROWS if r["id"] == ws.id)
            assert history[0].state["configuration"] == json.loads(row["configuration"])  # sealed as stored
            assert (history[0].state["title"], history[0].state["name"]) == (row["title"], row["name"])
    for row in ROWS:
        shown = migrated.client.get(f"/workspaces/{row['id']}").json()["workspace"]
        assert (shown["user_id"], shown["author_id"], shown["name"]) == (service_id, service_id, row["title"])
        assert shown["disk_usage"] == row["used_size"] and shown["disabled"] == int(not row["is_active"])


def test_the_service_token_edits_them_and_other_users_cannot(migrated) -> None:
    with migrated.app.state.service.sessions() as session, session.begin():
        _, token = add_user(session, "someone")
    s3_id = next(row["id"] for row in ROWS if "s3" in row["configuration"])
    stranger = migrated.anonymous.patch(f"/v6/workspaces/{s3_id}/", json={"title": "Mine"},
                                        headers={"X-Access-Token": token})
    assert stranger.status_code == 403 and stranger.json()["errors"][0]["name"] == "not_owner"
    assert migrated.client.headers["X-Access-Token"] == WRITER_TOKEN
    for row in ROWS:
        edited = migrated.client.patch(f"/v6/workspaces/{row['id']}/", json={"title": row["title"] + " (edited)"},
                                       headers={"If-Match": '"1"'})
        assert edited.status_code == 204, edited.text
        assert edited.headers["ETag"] == '"2"'
    # A client sends the masked configuration back with another change: the landed secrets stay.
    shown = migrated.client.get(f"/v6/workspaces/{s3_id}/").json()["configuration"]
    shown["broker"]["prefix"] = "team/ws2/"
    assert migrated.client.patch(f"/v6/workspaces/{s3_id}/", json={"configuration": shown}).status_code == 204
    box = SecretBox((FIXTURE["secret_key"],))
    with migrated.app.state.service.sessions() as session:
        opened = box.open(json.loads(session.get(Workspace, s3_id).configuration))
        actions = list(session.scalars(select(WorkspaceHistory.action).where(
            WorkspaceHistory.workspace_id == s3_id).order_by(WorkspaceHistory.id)))
    assert opened == {**PLAIN[s3_id], "broker": {**PLAIN[s3_id]["broker"], "prefix": "team/ws2/"}}
    assert actions == ["migrate", "edit", "edit"]
    created = migrated.client.post("/v6/workspaces/", json={"title": "After", "configuration": PLAIN[s3_id]})
    assert created.status_code == 201 and created.json()["id"] == max(row["id"] for row in ROWS) + 1


def test_a_revert_goes_back_to_what_the_landed_version_stored(migrated) -> None:
    s3_id = next(row["id"] for row in ROWS if "s3" in row["configuration"])
    row = next(r for r in ROWS if r["id"] == s3_id)
    nfs = {"broker": {"type": "nfs", "nfs_path": "other:/export"}}
    assert migrated.client.patch(f"/v6/workspaces/{s3_id}/", json={"title": "Changed", "configuration": nfs,
                                                                   "is_active": False}).status_code == 204
    history = migrated.client.get(f"/workspaces/{s3_id}/history").json()["history_list"]
    first = next(item for item in history if item["action"] == "migrate")
    reverted = migrated.client.patch(f"/workspaces/{s3_id}/history/{first['id']}")
    assert reverted.status_code == 200, reverted.text
    v6 = migrated.client.get(f"/v6/workspaces/{s3_id}/").json()
    assert (v6["title"], v6["is_active"], v6["deprecated"]) == (row["title"], True, None)
    with migrated.app.state.service.sessions() as session:
        opened = SecretBox((FIXTURE["secret_key"],)).open(json.loads(session.get(Workspace, s3_id).configuration))
    assert opened == PLAIN[s3_id]
