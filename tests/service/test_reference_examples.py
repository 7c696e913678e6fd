"""Replay the example requests of the v6 workspace reference and compare with the documented responses.

Ids and times are compared by type and format only; the rest must match field for field.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
HOST_CONFIG = {"broker": {"type": "host", "host_path": "/host/path"}}
CREATE_EXAMPLE = {"title": "Raw Source", "description": "Raw Source Workspace", "base_url": "http://host.com/rs",
                  "is_active": True, "configuration": HOST_CONFIG}
DOCUMENTED_DETAIL = {"id": 1, "name": "raw-source", "title": "Raw Source", "description": "Raw Source Workspace",
                     "base_url": "http://host.com/rs", "is_active": True, "created": "2015-10-05T21:26:04.855Z",
                     "deprecated": None, "last_modified": "2015-10-05T21:26:04.855Z", "configuration": HOST_CONFIG}
LIST_FIELDS = {"id", "name", "title", "description", "base_url", "is_active", "created", "deprecated",
               "last_modified"}


def same_as_documented(actual: dict, documented: dict) -> None:
    """Every documented field is present and equal, ids and times aside (checked by type/format)."""
    for key, expected in documented.items():
        assert key in actual, key
        if key == "id":
            assert isinstance(actual[key], int)
        elif key in ("created", "last_modified") or (key == "deprecated" and expected is not None):
            assert ISO.match(actual[key]), actual[key]
        else:
            assert actual[key] == expected, key


def test_create_example(service) -> None:
    response = service.client.post("/v6/workspaces/", json=CREATE_EXAMPLE)
    assert response.status_code == 201
    body = response.json()
    same_as_documented(body, DOCUMENTED_DETAIL)
    assert response.headers["Location"] == f"{service.url}/v6/workspaces/{body['id']}/"
    assert body["created"] == body["last_modified"]


def test_details_example(service) -> None:
    created = service.client.post("/v6/workspaces/", json=CREATE_EXAMPLE).json()
    response = service.client.get(f"/v6/workspaces/{created['id']}/")
    assert response.status_code == 200
    same_as_documented(response.json(), DOCUMENTED_DETAIL)
    assert set(response.json()) >= set(DOCUMENTED_DETAIL) | {"used_size", "total_size"}


def test_list_example(service) -> None:
    service.client.post("/v6/workspaces/", json=CREATE_EXAMPLE)
    service.client.post("/v6/workspaces/", json={
        "title": "Products", "description": "Products Workspace", "base_url": "http://host.com/products",
        "configuration": HOST_CONFIG})
    response = service.client.get("/v6/workspaces/")
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    products, raw = body["results"]
    # The documented list: "products" before "raw" (ordered by name); the size fields of the older API added.
    same_as_documented(products, {"id": 2, "name": "products", "title": "Products",
                                  "description": "Products Workspace", "base_url": "http://host.com/products",
                                  "is_active": True, "created": "", "deprecated": None, "last_modified": ""})
    same_as_documented(raw, {k: v for k, v in DOCUMENTED_DETAIL.items() if k in LIST_FIELDS})
    assert "configuration" not in raw
    assert {"used_size", "total_size"} <= set(raw)


def test_validation_example(service) -> None:
    service.client.post("/v6/workspaces/", json={**CREATE_EXAMPLE, "configuration": {
        "broker": {"type": "nfs", "nfs_path": "host:/my/path"}}})
    response = service.client.post("/v6/workspaces/validation/", json={"name": "raw-source", **CREATE_EXAMPLE})
    assert response.status_code == 200
    body = response.json()
    assert body["is_valid"] is True
    assert body["errors"] == []
    documented = {"name": "broker_type", "description": "Changing the broker type may disrupt queued/running jobs."}
    assert [{k: w[k] for k in documented} for w in body["warnings"] if w["name"] == "broker_type"] == [documented]


def test_edit_example_with_post_and_patch(service) -> None:
    ws_id = service.client.post("/v6/workspaces/", json=CREATE_EXAMPLE).json()["id"]
    edit = {**CREATE_EXAMPLE, "title": "Raw Source 2"}
    for method in ("POST", "PATCH"):  # the reference's example uses POST, its endpoint PATCH
        response = service.client.request(method, f"/v6/workspaces/{ws_id}/", json=edit)
        assert response.status_code == 204
        assert response.content == b""
    body = service.client.get(f"/v6/workspaces/{ws_id}/").json()
    assert (body["title"], body["name"]) == ("Raw Source 2", "raw-source")  # the name is stable


@pytest.mark.parametrize("configuration", [
    {"broker": {"type": "host", "host_path": "/the/absolute/host/path"}},
    {"broker": {"type": "nfs", "nfs_path": "host:/my/path"}},
    {"broker": {"type": "s3", "bucket_name": "my_bucket.domain.com",
                "credentials": {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
                                "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                "host_path": "/my_bucket", "region_name": "us-east-1"}},
], ids=["host", "nfs", "s3"])
def test_configuration_examples_are_accepted(service, configuration) -> None:
    response = service.client.post("/v6/workspaces/", json={"title": "Example", "configuration": configuration})
    assert response.status_code == 201, response.text
    shown = response.json()["configuration"]
    if configuration["broker"]["type"] == "s3":
        assert shown["broker"]["credentials"] == {"access_key_id": "************",
                                                  "secret_access_key": "************"}
    else:
        assert shown == configuration


def test_v7_is_an_alias(service) -> None:
    ws_id = service.client.post("/v7/workspaces/", json=CREATE_EXAMPLE).json()["id"]
    assert service.client.get(f"/v7/workspaces/{ws_id}/").json() == service.client.get(
        f"/v6/workspaces/{ws_id}/").json()
