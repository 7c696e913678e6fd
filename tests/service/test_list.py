"""Listing: pages with absolute links, time range filters (datetimes and durations), names, ordering."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

HOST = {"broker": {"type": "host", "host_path": "/data"}}


def create(service, title: str, **fields) -> dict:
    response = service.client.post("/v6/workspaces/", json={"title": title, "configuration": HOST, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_pages_and_links(service) -> None:
    for i in range(7):
        create(service, f"Workspace {i}")
    first = service.client.get("/v6/workspaces/", params={"page_size": 3, "order": "id"}).json()
    assert first["count"] == 7
    assert [r["name"] for r in first["results"]] == ["workspace-0", "workspace-1", "workspace-2"]
    assert first["previous"] is None
    assert first["next"] == f"{service.url}/v6/workspaces/?page_size=3&order=id&page=2"
    second = service.client.get(first["next"]).json()
    assert [r["name"] for r in second["results"]] == ["workspace-3", "workspace-4", "workspace-5"]
    assert second["previous"] == f"{service.url}/v6/workspaces/?page_size=3&order=id"
    third = service.client.get(second["next"]).json()
    assert [r["name"] for r in third["results"]] == ["workspace-6"]
    assert third["next"] is None
    assert httpx.URL(third["previous"]).params["page"] == "2"
    beyond = service.client.get("/v6/workspaces/", params={"page_size": 3, "page": 4})
    assert beyond.status_code == 404
    assert beyond.json()["errors"][0]["field"] == "page"


@pytest.mark.parametrize("params, field", [
    ({"page_size": 0}, "page_size"), ({"page_size": 1001}, "page_size"), ({"page_size": "ten"}, "page_size"),
    ({"page": 0}, "page"), ({"page": "x"}, "page"), ({"order": "colour"}, "order"), ({"order": "-secret"}, "order"),
    ({"started": "yesterday"}, "started"), ({"ended": "P1Y"}, "ended"),
    ({"started": "2020-01-02T00:00:00Z", "ended": "2020-01-01T00:00:00Z"}, "started"),
    ({"name": "a\x00b"}, "name"), ([("name", str(i)) for i in range(501)], "name"),
])
def test_bad_query_parameters_are_400_naming_the_field(service, params, field) -> None:
    response = service.client.get("/v6/workspaces/", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["location"] == "query"
    assert body["detail"]


def test_page_size_bounds_are_accepted(service) -> None:
    create(service, "One")
    for size in (1, 1000):
        assert service.client.get("/v6/workspaces/", params={"page_size": size}).json()["count"] == 1


def test_filter_by_names(service) -> None:
    for title in ("Raw", "Products", "Scratch"):
        create(service, title)
    body = service.client.get("/v6/workspaces/", params=[("name", "raw"), ("name", "scratch")]).json()
    assert [r["name"] for r in body["results"]] == ["raw", "scratch"]
    assert body["count"] == 2
    assert service.client.get("/v6/workspaces/", params={"name": "none"}).json()["count"] == 0


def test_order_by_several_fields_and_reverse(service) -> None:
    create(service, "b", description="2")
    create(service, "a", description="2")
    create(service, "c", description="1")
    names = lambda *order: [r["name"] for r in service.client.get(  # noqa: E731
        "/v6/workspaces/", params=[("order", o) for o in order]).json()["results"]]
    assert names() == ["a", "b", "c"]
    assert names("-name") == ["c", "b", "a"]
    assert names("description", "name") == ["c", "a", "b"]
    assert names("-description", "-name") == ["b", "a", "c"]
    assert names("-id") == ["c", "a", "b"]


def test_order_puts_nulls_last_ascending(service) -> None:
    create(service, "x", base_url="http://h/x")
    create(service, "y")
    asc = [r["name"] for r in service.client.get("/v6/workspaces/", params={"order": "base_url"}).json()["results"]]
    desc = [r["name"] for r in service.client.get("/v6/workspaces/", params={"order": "-base_url"}).json()["results"]]
    assert asc == ["x", "y"]
    assert desc == ["y", "x"]


def test_started_and_ended_filter_on_last_modified(service) -> None:
    old = create(service, "Old")
    time.sleep(0.3)
    middle = datetime.now(timezone.utc)
    time.sleep(0.3)
    new = create(service, "New")
    get = lambda **p: [r["name"] for r in service.client.get("/v6/workspaces/", params=p).json()["results"]]  # noqa: E731
    stamp = middle.isoformat().replace("+00:00", "Z")
    assert get(started=stamp) == ["new"]
    assert get(ended=stamp) == ["old"]
    assert get(started=old["last_modified"], ended=new["last_modified"]) == ["new", "old"]
    # Durations mean "now minus the duration".
    assert get(started="PT3H0M0S") == ["new", "old"]
    assert get(started="PT0.4S") == ["new"]
    assert get(ended="P1D") == []
    # A datetime without an offset is UTC; other offsets are converted.
    naive = middle.replace(tzinfo=None).isoformat()
    assert get(started=naive) == ["new"]
    shifted = middle.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert get(started=shifted) == ["new"]


def test_patch_moves_last_modified(service) -> None:
    ws = create(service, "Edited")
    time.sleep(0.2)
    cut = datetime.now(timezone.utc).isoformat()
    assert service.client.get("/v6/workspaces/", params={"started": cut}).json()["count"] == 0
    assert service.client.patch(f"/v6/workspaces/{ws['id']}/", json={"description": "x"}).status_code == 204
    assert service.client.get("/v6/workspaces/", params={"started": cut}).json()["count"] == 1
