"""The v5 workspace API: the older document's list and detail examples replayed over the same registry as v6.

Ids and times are compared by type and format; every other documented field by value, and no field the
document does not name may appear.
"""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy import update

from brokers.service.db.models import Workspace, utcnow

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
HOST_CONFIG = {"broker": {"type": "host", "host_path": "/host/path"}}
# The documented list (Workspace List) and detail (Workspace Details), with the types the document gives.
LIST_FIELDS = {"id": int, "name": str, "title": str, "description": str, "base_url": (str, type(None)),
               "is_active": bool, "used_size": (int, type(None)), "total_size": (int, type(None)),
               "created": "iso", "archived": ("iso", None), "last_modified": "iso"}
DETAIL_FIELDS = {**LIST_FIELDS, "json_config": (dict, type(None))}
DOCUMENTED_LIST = [
    {"id": 2, "name": "products", "title": "Products", "description": "Products Workspace",
     "base_url": "http://host.com/products", "is_active": True, "archived": None},
    {"id": 1, "name": "rs", "title": "Raw Source", "description": "Raw Source Workspace",
     "base_url": "http://host.com/rs", "is_active": True, "archived": None},
]


def check_shape(body: dict, fields: dict) -> None:
    """Exactly the documented fields, each of its documented type (Decimal sizes: whole numbers or null)."""
    assert set(body) == set(fields), set(body) ^ set(fields)
    for key, kind in fields.items():
        value = body[key]
        if kind == "iso":
            assert isinstance(value, str) and ISO.match(value), (key, value)
        elif kind == ("iso", None):
            assert value is None or (isinstance(value, str) and ISO.match(value)), (key, value)
        else:
            assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), (key, value)


def create(service, **body) -> dict:
    response = service.client.post("/v6/workspaces/", json={"configuration": HOST_CONFIG, **body})
    assert response.status_code == 201, response.text
    return response.json()


def create_documented(service) -> dict[str, dict]:
    """The two workspaces of the document's list (``rs`` first, as its ids say), through v6."""
    rs = create(service, title="Raw Source", description="Raw Source Workspace", base_url="http://host.com/rs")
    products = create(service, title="Products", description="Products Workspace",
                      base_url="http://host.com/products")
    # The document's "rs" is a slug v6 would not derive from "Raw Source": give the registry that name.
    with service.app.state.service.sessions() as session, session.begin():
        session.execute(update(Workspace).where(Workspace.id == rs["id"]).values(name="rs"))
    return {"rs": rs, "products": products}


def test_list_example(service) -> None:
    made = create_documented(service)
    response = service.client.get("/v5/workspaces/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    ids = {"products": made["products"]["id"], "rs": made["rs"]["id"]}
    for shown, documented in zip(body["results"], DOCUMENTED_LIST, strict=True):
        check_shape(shown, LIST_FIELDS)
        assert shown == {**shown, **documented, "id": ids[documented["name"]]}
        assert (shown["used_size"], shown["total_size"]) == (None, None)  # /host/path is not there: unknown


def test_detail_example(service) -> None:
    rs = create_documented(service)["rs"]
    response = service.client.get(f"/v5/workspaces/{rs['id']}/")
    assert response.status_code == 200, response.text
    body = response.json()
    check_shape(body, DETAIL_FIELDS)
    assert body == {**body, **DOCUMENTED_LIST[1], "id": rs["id"], "json_config": HOST_CONFIG}
    assert response.headers["ETag"] == service.client.get(f"/v6/workspaces/{rs['id']}/").headers["ETag"]


def test_v5_shows_what_v6_shows(service) -> None:
    ws = create(service, title="Shared Space", description="made through v6", is_active=False)
    v6 = service.client.get(f"/v6/workspaces/{ws['id']}/").json()
    v5 = service.client.get(f"/v5/workspaces/{ws['id']}/").json()
    assert v5["archived"] == v6["deprecated"] is not None and ISO.match(v5["archived"])
    assert v5["json_config"] == v6["configuration"]
    for key in ("id", "name", "title", "description", "base_url", "is_active", "used_size", "total_size",
                "created", "last_modified"):
        assert v5[key] == v6[key], key
    assert v5["is_active"] is False
    listed_v6 = service.client.get("/v6/workspaces/").json()["results"]
    listed_v5 = service.client.get("/v5/workspaces/").json()["results"]
    renamed = {"archived": "deprecated"}
    assert [{renamed.get(k, k): v for k, v in row.items()} for row in listed_v5] == [
        {k: v for k, v in row.items() if k != "usage_measured"} for row in listed_v6]
    service.client.patch(f"/v6/workspaces/{ws['id']}/", json={"is_active": True, "title": "Back Again"})
    again = service.client.get(f"/v5/workspaces/{ws['id']}/").json()
    assert (again["is_active"], again["archived"], again["title"]) == (True, None, "Back Again")


def test_secrets_are_masked_in_json_config(service) -> None:
    ws = create(service, title="Bucket", configuration={"broker": {
        "type": "s3", "bucket_name": "raw", "endpoint_url": "http://user:pa55word@127.0.0.1:9",
        "credentials": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMIK7MDENGb"}}})
    response = service.client.get(f"/v5/workspaces/{ws['id']}/")
    shown = response.json()["json_config"]["broker"]
    assert shown["credentials"] == {"access_key_id": "************", "secret_access_key": "************"}
    assert shown["endpoint_url"] == "http://************@127.0.0.1:9"
    for secret in ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMIK7MDENGb", "pa55word"):
        assert secret not in response.text


def test_workspace_without_configuration_has_null_json_config(service) -> None:
    ws = create(service, title="Bare", description="no storage yet")
    with service.app.state.service.sessions() as session, session.begin():
        session.execute(update(Workspace).where(Workspace.id == ws["id"]).values(configuration=None))
    body = service.client.get(f"/v5/workspaces/{ws['id']}/").json()
    check_shape(body, DETAIL_FIELDS)
    assert body["json_config"] is None


def test_sizes_are_null_until_measured_then_the_measured_bytes(service, host_root) -> None:
    payloads = {"a.bin": os.urandom(1234), "dir/b.bin": os.urandom(56_789)}
    for path, data in payloads.items():
        (host_root / path).parent.mkdir(parents=True, exist_ok=True)
        (host_root / path).write_bytes(data)
    unknown = create(service, title="Elsewhere")  # /host/path does not exist: never measured
    ws = create(service, title="Measured", configuration={"broker": {"type": "host", "host_path": str(host_root),
                                                                     "total_size": 10_000_000}})
    assert service.client.get(f"/v5/workspaces/{unknown['id']}/").json()["used_size"] is None
    body = service.wait_for(lambda: (b := service.client.get(f"/v5/workspaces/{ws['id']}/").json())["used_size"]
                            is not None and b)
    assert (body["used_size"], body["total_size"]) == (sum(map(len, payloads.values())), 10_000_000)
    rows = {r["id"]: r for r in service.client.get("/v5/workspaces/").json()["results"]}
    assert (rows[ws["id"]]["used_size"], rows[ws["id"]]["total_size"]) == (1234 + 56_789, 10_000_000)
    assert (rows[unknown["id"]]["used_size"], rows[unknown["id"]]["total_size"]) == (None, None)
    v6 = service.client.get(f"/v6/workspaces/{ws['id']}/").json()
    assert (v6["used_size"], v6["total_size"]) == (body["used_size"], body["total_size"])


def test_trashed_workspaces_are_invisible(service) -> None:
    kept = create(service, title="Kept")
    gone = create(service, title="Gone")
    with service.app.state.service.sessions() as session, session.begin():
        session.execute(update(Workspace).where(Workspace.id == gone["id"]).values(trashed=utcnow()))
    body = service.client.get("/v5/workspaces/").json()
    assert [r["id"] for r in body["results"]] == [kept["id"]] and body["count"] == 1
    response = service.client.get(f"/v5/workspaces/{gone['id']}/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "id"
    assert service.client.get("/v5/workspaces/", params={"name": "gone"}).json()["count"] == 0


def test_query_parameters_as_v6(service) -> None:
    for title in ("b", "a", "c"):
        create(service, title=title)
    create(service, title="old", is_active=False)
    names = lambda *params: [r["name"] for r in service.client.get(  # noqa: E731
        "/v5/workspaces/", params=list(params)).json()["results"]]
    assert names() == ["a", "b", "c", "old"]
    assert names(("order", "-name")) == ["old", "c", "b", "a"]
    assert names(("order", "-archived"), ("order", "name")) == ["a", "b", "c", "old"]  # nulls sort as largest
    assert names(("order", "archived"), ("order", "-name")) == ["old", "c", "b", "a"]
    assert names(("name", "a"), ("name", "c")) == ["a", "c"]
    assert names(("started", "PT1H")) == ["a", "b", "c", "old"]
    assert names(("ended", "2015-01-01T00:00:00Z")) == []
    page = service.client.get("/v5/workspaces/", params={"page_size": 3, "order": "id"}).json()
    assert page["count"] == 4 and page["next"] == f"{service.url}/v5/workspaces/?page_size=3&order=id&page=2"
    second = service.client.get(page["next"]).json()
    assert len(second["results"]) == 1 and second["previous"] == f"{service.url}/v5/workspaces/?page_size=3&order=id"


@pytest.mark.parametrize("params, field", [
    ({"page": 0}, "page"), ({"page_size": 1001}, "page_size"), ({"order": "deprecated"}, "order"),
    ({"order": "usage_measured"}, "order"), ({"started": "yesterday"}, "started"), ({"name": "a\x00b"}, "name"),
    ({"page": 2}, "page"),
])
def test_bad_query_parameters_name_the_field(service, params, field) -> None:
    response = service.client.get("/v5/workspaces/", params=params)
    assert response.status_code in (400, 404), response.text
    assert response.json()["errors"][0] == {**response.json()["errors"][0], "field": field, "location": "query"}


def test_reads_need_a_token(service) -> None:
    ws = create(service, title="Private")
    for path in ("/v5/workspaces/", f"/v5/workspaces/{ws['id']}/"):
        assert service.anonymous.get(path).status_code == 401
        bad = service.anonymous.get(path, headers={"X-Access-Token": "nope"})
        assert bad.status_code == 403 and bad.json()["errors"][0]["name"] == "invalid_token"
    assert service.client.get("/v5/workspaces/999999/").status_code == 404
