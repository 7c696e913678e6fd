"""The management API's promises beyond the document's examples: one registry under three APIs, all-or-nothing
bulk edits, history that is never rewritten, trash that reserves names, owners, versions, checked settings."""

from __future__ import annotations

import itertools
import json

import pytest
from sqlalchemy import select, update

from brokers.service.db.models import Workspace, WorkspaceHistory
from brokers.service.security import SecretBox
from brokers.service.store.users import add_user
from tests.fixtures.service import SECRET_KEY

ACCESS = "AKIAMANAGEMENT000001"
SECRET = "management-secret-never-shown-Zq"
S3 = {"broker": {"type": "s3", "bucket_name": "bucket", "region_name": "us-east-1",
                 "endpoint_url": "http://127.0.0.1:9",
                 "credentials": {"access_key_id": ACCESS, "secret_access_key": SECRET}}}


def host(tmp_path) -> dict:
    return {"broker": {"type": "host", "host_path": str(tmp_path)}}


def create(service, name: str, **fields) -> dict:
    response = service.client.post("/workspaces?load_full_structure=1", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()["workspace"]


_users = itertools.count(1)


def user(service, name: str, admin: bool = False) -> tuple[int, dict]:
    """A new user (names are unique per run: the service and its users are shared by a module's tests)."""
    with service.app.state.service.sessions() as session, session.begin():
        row, token = add_user(session, f"{name}-{next(_users)}", admin=admin)
        return row.id, {"X-Access-Token": token}


def rows(service, model, *where):
    with service.app.state.service.sessions() as session:
        return list(session.scalars(select(model).where(*where)))


def test_one_registry_behind_three_apis(service, tmp_path) -> None:
    made = create(service, "Raw Source", description="raw", configuration=host(tmp_path), disabled=1)
    v6 = service.client.get(f"/v6/workspaces/{made['id']}/").json()
    v5 = service.client.get(f"/v5/workspaces/{made['id']}/").json()
    assert (v6["title"], v6["name"], v6["is_active"], v6["description"]) == ("Raw Source", "raw-source", False, "raw")
    assert v6["deprecated"] is not None and v5["archived"] is not None
    assert v5["json_config"] == v6["configuration"] == host(tmp_path)
    # An edit through v6 shows through the management API, and the other way round.
    assert service.client.patch(f"/v6/workspaces/{made['id']}/", json={"title": "Raw", "is_active": True}
                                ).status_code == 204
    mine = service.client.get(f"/workspaces/{made['id']}").json()["workspace"]
    assert (mine["name"], mine["disabled"]) == ("Raw", 0)
    assert service.client.patch(f"/workspaces/{made['id']}", json={"description": "changed"}).status_code == 200
    assert service.client.get(f"/v5/workspaces/{made['id']}/").json()["description"] == "changed"
    assert [h["action"] for h in service.client.get(f"/workspaces/{made['id']}/history").json()["history_list"]] \
        == ["create", "edit", "edit"]


def test_a_workspace_without_storage_reports_no_usage(service) -> None:
    made = create(service, "No storage yet")
    assert (made["configuration"], made["disk_usage"], made["high_disk_usage"]) == (None, None, 0)
    assert service.client.get(f"/v6/workspaces/{made['id']}/").json()["configuration"] is None
    assert service.client.get(f"/v5/workspaces/{made['id']}/").json()["used_size"] is None


def test_bulk_edit_is_all_or_nothing(service) -> None:
    first, second = create(service, "first"), create(service, "second")
    before = rows(service, WorkspaceHistory)
    response = service.client.patch("/workspaces", json=[
        {"id": first["id"], "description": "would change"},
        {"id": second["id"], "name": "first"},  # taken by the first item's workspace
    ])
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "1.name"
    assert "nothing was changed" in response.json()["detail"]
    after = service.client.get(f"/workspaces/{first['id']}").json()["workspace"]
    assert (after["description"], after["version"]) == (None, 1)
    assert len(rows(service, WorkspaceHistory)) == len(before)
    response = service.client.patch("/workspaces", json=[{"id": first["id"], "description": "a"},
                                                         {"id": second["id"], "dawg_id": 5}])
    assert response.status_code == 200
    assert [(w["description"], w["dawg_id"]) for w in response.json()["workspaces"]] == [("a", None), (None, 5)]
    assert service.client.patch("/workspaces", json=[{"id": first["id"]}, {"id": first["id"]}]).status_code == 400


def test_trash_hides_everywhere_and_reserves_the_name_until_purged(service, tmp_path) -> None:
    made = create(service, "Bin me", configuration=host(tmp_path), dawg_id=3)
    assert service.client.delete(f"/workspaces/{made['id']}").json() == {"message": "OK"}
    assert service.client.get(f"/workspaces/{made['id']}").status_code == 404
    assert service.client.get(f"/v6/workspaces/{made['id']}/").status_code == 404
    assert service.client.get(f"/v5/workspaces/{made['id']}/").status_code == 404
    for path, key in (("/workspaces", "workspaces"), ("/dawgs/3/workspaces", "workspaces")):
        assert service.client.get(path).json()[key] == []
    assert service.client.get("/v6/workspaces/").json()["count"] == 0
    assert service.client.get("/v5/workspaces/").json()["count"] == 0
    trashed = service.client.get("/workspaces/trash").json()["trashed_workspaces"]
    assert [(w["id"], w["deleted"]) for w in trashed] == [(made["id"], 1)]
    taken = service.client.post("/workspaces", json={"name": "Bin me"})
    assert taken.status_code == 409 and "trash" in taken.json()["detail"]
    restored = service.client.patch(f"/workspaces/trash/{made['id']}?load_full_structure=1").json()["workspace"]
    assert (restored["deleted"], restored["configuration"]) == (0, host(tmp_path))
    assert service.client.delete(f"/workspaces/{made['id']}").status_code == 200
    assert service.client.delete(f"/workspaces/trash/{made['id']}").json() == {"message": "OK"}
    assert rows(service, WorkspaceHistory, WorkspaceHistory.workspace_id == made["id"]) == []
    assert service.client.post("/workspaces", json={"name": "Bin me"}).status_code == 201
    assert service.client.patch(f"/workspaces/trash/{made['id']}").status_code == 404


def test_history_keeps_every_state_and_a_revert_is_a_new_change(service) -> None:
    made = create(service, "test", settings={"schedules": [{"minute": "5"}]})
    ws = made["id"]
    service.client.patch(f"/workspaces/{ws}", json={"name": "example workspace", "variables": {"a": 1}})
    history = service.client.get(f"/workspaces/{ws}/history").json()["history_list"]
    assert [(h["action"], h["workspace"]["name"]) for h in history] == [("create", "test"),
                                                                       ("edit", "example workspace")]
    assert "previous_history" not in history[0]
    assert history[1]["previous_history"]["id"] == history[0]["id"]
    reverted = service.client.patch(f"/workspaces/{ws}/history/{history[0]['id']}?load_full_structure=1")
    assert reverted.status_code == 200
    body = reverted.json()["workspace"]
    assert (body["name"], body["variables"], body["settings"]["schedules"][0]["minute"]) == ("test", {}, "5")
    again = service.client.get(f"/workspaces/{ws}/history?order_dir=DESC").json()["history_list"]
    assert [h["action"] for h in again] == ["revert", "edit", "create"]
    assert again[1] == history[1] | {"previous_history": history[1]["previous_history"]}  # never rewritten
    item = service.client.get(f"/workspaces/{ws}/history/{again[0]['id']}").json()["history"]
    assert item["previous_history"]["workspace"]["name"] == "example workspace"
    assert service.client.get(f"/workspaces/{ws}/history/999999").status_code == 404
    other = create(service, "other")
    assert service.client.get(f"/workspaces/{other['id']}/history/{again[0]['id']}").status_code == 404


def test_secrets_in_history_are_sealed_and_masked(service) -> None:
    made = create(service, "bucket", configuration=S3)
    service.client.patch(f"/workspaces/{made['id']}", json={"configuration": {
        **S3, "broker": {**S3["broker"], "bucket_name": "other", "credentials": {
            "access_key_id": "AKIASECONDKEY0000002", "secret_access_key": "second-secret-never-shown"}}}})
    answer = service.client.get(f"/workspaces/{made['id']}/history?load_full_structure=1").text
    for secret in (ACCESS, SECRET, "AKIASECONDKEY0000002", "second-secret-never-shown"):
        assert secret not in answer
    assert "************" in answer
    states = [row.state for row in rows(service, WorkspaceHistory, WorkspaceHistory.workspace_id == made["id"])]
    assert all(ACCESS not in json.dumps(s) and SECRET not in json.dumps(s) for s in states)
    opened = SecretBox([SECRET_KEY]).open(states[0]["configuration"])
    assert opened["broker"]["credentials"] == S3["broker"]["credentials"]
    first = service.client.get(f"/workspaces/{made['id']}/history").json()["history_list"][0]["id"]
    service.client.patch(f"/workspaces/{made['id']}/history/{first}")
    live = rows(service, Workspace, Workspace.id == made["id"])[0]
    assert SecretBox([SECRET_KEY]).open(json.loads(live.configuration)) == S3


def test_versions_refuse_stale_edits_and_keep_both_changes_without_if_match(service) -> None:
    made = create(service, "versioned")
    ws, etag = made["id"], service.client.get(f"/workspaces/{made['id']}").headers["ETag"]
    assert etag == '"1"'
    assert service.client.patch(f"/workspaces/{ws}", json={"description": "one"},
                                headers={"If-Match": etag}).headers["ETag"] == '"2"'
    stale = service.client.patch(f"/workspaces/{ws}", json={"description": "two"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["errors"][0]["field"] == "If-Match"
    assert service.client.patch(f"/v6/workspaces/{ws}/", json={"description": "two"},
                                headers={"If-Match": etag}).status_code == 412
    assert service.client.delete(f"/workspaces/{ws}", headers={"If-Match": etag}).status_code == 412
    # Without If-Match the last write wins, and history has both.
    service.client.patch(f"/workspaces/{ws}", json={"description": "A"})
    service.client.patch(f"/v6/workspaces/{ws}/", json={"description": "B"})
    history = service.client.get(f"/workspaces/{ws}/history").json()["history_list"]
    assert [h["workspace"]["description"] for h in history] == [None, "one", "A", "B"]
    assert service.client.get(f"/v6/workspaces/{ws}/").headers["ETag"] == '"4"'


def test_owners_and_admins_change_workspaces_others_cannot(service) -> None:
    alice, alice_token = user(service, "alice")
    bob, bob_token = user(service, "bob")
    _, admin_token = user(service, "root", admin=True)
    made = service.client.post("/workspaces", json={"name": "alice's"}, headers=alice_token).json()["workspace"]
    assert (made["user_id"], made["author_id"]) == (alice, alice)
    ws = made["id"]
    refused = service.client.patch(f"/workspaces/{ws}", json={"description": "bob was here"}, headers=bob_token)
    assert (refused.status_code, refused.json()["errors"][0]["name"]) == (403, "not_owner")
    for method, path in (("DELETE", f"/workspaces/{ws}"), ("POST", f"/workspaces/{ws}")):
        assert service.client.request(method, path, headers=bob_token).status_code == 403
    assert service.client.patch(f"/v6/workspaces/{ws}/", json={"title": "x"}, headers=bob_token).status_code == 403
    given = service.client.patch(f"/workspaces/{ws}/owner", json={"user_id": bob}, headers=alice_token)
    assert given.json()["workspace"]["user_id"] == bob
    assert given.json()["workspace"]["author_id"] == alice
    assert service.client.patch(f"/workspaces/{ws}", json={"description": "now alice cannot"},
                                headers=alice_token).status_code == 403
    assert service.client.patch(f"/workspaces/{ws}", json={"description": "admin can"},
                                headers=admin_token).status_code == 200
    history = service.client.get(f"/workspaces/{ws}/history", headers=bob_token).json()["history_list"]
    assert [(h["action"], h["changed_by"]) for h in history][:2] == [("create", alice), ("owner", alice)]
    assert service.client.patch(f"/workspaces/{ws}/owner", json={"user_id": 10**6},
                                headers=admin_token).json()["errors"][0]["field"] == "user_id"


def test_clone_copies_configuration_and_settings_for_the_caller(service, tmp_path) -> None:
    alice, alice_token = user(service, "alice")
    source = create(service, "example workspace", configuration=S3, variables={"x": 1}, tags=[2, 1],
                    settings={"notification_emails": ["mr@foo.test"]})
    service.client.patch(f"/workspaces/{source['id']}/owner", json={"user_id": alice})
    first = service.client.post(f"/workspaces/{source['id']}?load_full_structure=1", headers=alice_token)
    assert first.status_code == 200
    clone = first.json()["workspace"]
    assert clone["name"] == "clone_example workspace"
    assert (clone["user_id"], clone["author_id"]) == (alice, alice)
    for field in ("configuration", "settings", "variables", "tags", "frontend_settings", "input_settings"):
        assert clone[field] == source[field], field
    stored = rows(service, Workspace, Workspace.id == clone["id"])[0]
    assert SecretBox([SECRET_KEY]).open(json.loads(stored.configuration)) == S3
    second = service.client.post(f"/workspaces/{source['id']}", headers=alice_token).json()["workspace"]
    assert second["name"] == "clone_example workspace_2"


@pytest.mark.parametrize(("settings", "field"), [
    ({"schedules": [{"minute": "61"}]}, "settings.schedules.0.minute"),
    ({"schedules": [{"day_of_week": "someday"}]}, "settings.schedules.0.day_of_week"),
    ({"schedules": [{"hour": "*", "when": "now"}]}, "settings.schedules.0.when"),
    ({"notification_emails": ["not-an-address"]}, "settings.notification_emails.0"),
    ({"delete_data_after_success": "yes"}, "settings.delete_data_after_success"),
])
def test_settings_are_checked_field_by_field(service, settings, field) -> None:
    response = service.client.post("/workspaces", json={"name": "checked", "settings": settings})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert service.client.get("/workspaces").json()["workspaces"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "input_settings": {"inputs": [987654]}}, "input_settings.inputs"),
    ({"name": "x", "disabled": 2}, "disabled"),
    ({"name": "x", "user_id": 1}, "user_id"),
    ({"name": ""}, "name"),
    ({"name": "x", "configuration": {"broker": {"type": "host"}}}, "configuration.broker"),
])
def test_bad_fields_are_named(service, body, field) -> None:
    response = service.client.post("/workspaces", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"].startswith(field)


def test_high_disk_usage_follows_the_threshold(service, tmp_path) -> None:
    made = create(service, "full disk")  # no storage: no usage scan overwrites the figures set below
    with service.app.state.service.sessions() as session, session.begin():
        session.execute(update(Workspace).where(Workspace.id == made["id"]).values(used_size=91, total_size=100))
    assert service.client.get(f"/workspaces/{made['id']}").json()["workspace"]["high_disk_usage"] == 1
    with service.app.state.service.sessions() as session, session.begin():
        session.execute(update(Workspace).where(Workspace.id == made["id"]).values(used_size=90, total_size=100))
    body = service.client.get(f"/workspaces/{made['id']}").json()["workspace"]
    assert (body["high_disk_usage"], body["disk_usage"]) == (0, 90)


def test_lists_filter_order_and_echo_what_they_applied(service) -> None:
    for name, disabled, tags in (("alpha", 0, [1]), ("Beta", 1, [2]), ("gamma", 0, [1, 2]), ("delta", 0, [])):
        create(service, name, disabled=disabled, tags=tags)
    listed = service.client.get("/workspaces?order_by=name&order_dir=desc&limit=2&offset=1").json()
    assert [w["name"] for w in listed["workspaces"]] == ["delta", "Beta"]
    assert listed["selection_settings"] == {"limit": 2, "offset": 1, "order_by": "name", "order_dir": "DESC",
                                            "name_filter": None, "tag_ids": None, "show_enabled": True,
                                            "show_disabled": True}
    names = lambda query: [w["name"] for w in service.client.get(f"/workspaces?{query}").json()["workspaces"]]  # noqa: E731
    assert names("name_filter=TA") == ["Beta", "delta"]
    assert names("tag_ids=2") == ["Beta", "gamma"]
    assert names("tag_ids=1&tag_ids=2&show_disabled=0") == ["alpha", "gamma"]
    assert names("show_enabled=false") == ["Beta"]
    assert names("show_enabled=0&show_disabled=0") == []
    assert names("name_filter=%25") == []  # a literal %, not a wildcard
    assert "settings" not in service.client.get("/workspaces").json()["workspaces"][0]
    assert "settings" in service.client.get("/workspaces?load_full_structure=1").json()["workspaces"][0]
    bad = service.client.get("/workspaces?order_by=password")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "order_by")


def test_concurrent_writers_never_share_a_name_or_a_version(service) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda _: service.client.post("/workspaces", json={"name": "race"}).status_code,
                                range(8)))
    assert sorted(created) == [201] + [409] * 7
    ws = service.client.get("/workspaces").json()["workspaces"][0]["id"]
    with ThreadPoolExecutor(8) as pool:
        edits = list(pool.map(lambda n: service.client.patch(f"/workspaces/{ws}", json={"description": str(n)},
                                                             headers={"If-Match": '"1"'}).status_code, range(8)))
    assert sorted(edits) == [200] + [412] * 7
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: service.client.patch(f"/workspaces/{ws}", json={"variables": {"n": n}}), range(8)))
    history = service.client.get(f"/workspaces/{ws}/history?limit=100").json()["history_list"]
    assert [h["workspace"]["version"] for h in history] == list(range(1, 11))  # every change kept, in order


def test_inputs_never_point_at_nothing_and_never_loop(service) -> None:
    a, b, c = create(service, "a"), create(service, "b"), create(service, "c")
    chain = service.client.patch("/workspaces", json=[{"id": a["id"], "input_settings": {"inputs": [b["id"]]}},
                                                      {"id": b["id"], "input_settings": {"inputs": [c["id"]]}}])
    assert chain.status_code == 200
    loop = service.client.patch(f"/workspaces/{c['id']}", json={"input_settings": {"inputs": [a["id"]]}})
    assert (loop.status_code, loop.json()["errors"][0]["name"]) == (400, "input_cycle")
    assert service.client.delete(f"/workspaces/{b['id']}").status_code == 200  # a trashed input stays listed
    clone = service.client.post(f"/workspaces/{a['id']}?load_full_structure=1").json()["workspace"]
    assert clone["input_settings"] == {"inputs": [b["id"]]}
    refused = service.client.delete(f"/workspaces/trash/{b['id']}")
    assert (refused.status_code, refused.json()["errors"][0]["name"]) == (409, "in_use")
    for ws in (a, clone):
        assert service.client.patch(f"/workspaces/{ws['id']}", json={"input_settings": {"inputs": []}}
                                    ).status_code == 200
    assert service.client.delete(f"/workspaces/trash/{b['id']}").status_code == 200
    last = create(service, "last")  # the highest id: the one SQLite would give again without AUTOINCREMENT
    service.client.delete(f"/workspaces/{last['id']}")
    assert service.client.delete(f"/workspaces/trash/{last['id']}").status_code == 200
    assert create(service, "newcomer")["id"] > last["id"]  # a purged id is never given again


def test_names_are_trimmed_and_unique_in_any_case(service) -> None:
    assert create(service, "  Spaced  ")["name"] == "Spaced"
    taken = service.client.post("/workspaces", json={"name": "SPACED"})
    assert (taken.status_code, taken.json()["errors"][0]["field"]) == (409, "name")


def test_settings_may_come_as_json_text_as_the_document_types_them(service) -> None:
    made = create(service, "texty", settings='{"schedules": [{"minute": "*"}]}')
    assert made["settings"]["schedules"] == [{"minute": "*", "hour": "*", "day": "*", "month": "*",
                                              "day_of_week": "*"}]
    bad = service.client.post("/workspaces", json={"name": "bad", "settings": "{not json"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "settings")
