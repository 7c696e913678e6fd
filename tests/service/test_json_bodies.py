"""A body that is not JSON: every endpoint taking one says so, with where the JSON breaks (line, column, char)."""

from __future__ import annotations

import pytest

HOST = {"broker": {"type": "host", "host_path": "/data"}}
BROKEN = b'{"title": "T",\n "configuration": 9,}'  # a trailing comma: line 2, column 21 (char 35)
WHERE = "line 2 column 21 (char 35)"


@pytest.mark.parametrize("version", ["v6", "v7"])
def test_every_endpoint_says_the_body_is_not_json_and_where(service, version) -> None:
    ws_id = service.client.post(f"/{version}/workspaces/", json={"title": "T", "configuration": HOST}).json()["id"]
    for method, path in (("POST", "/workspaces/"), ("PATCH", f"/workspaces/{ws_id}/"),
                         ("POST", f"/workspaces/{ws_id}/")):
        response = service.client.request(method, f"/{version}{path}", content=BROKEN,
                                          headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (method, path, response.text)
        body = response.json()
        assert body["detail"].startswith("the body is not valid JSON: "), body
        assert WHERE in body["detail"]
        assert body["errors"] == [{"name": "invalid_json", "description": body["detail"], "field": "body",
                                   "location": "body"}]
    validation = service.client.post(f"/{version}/workspaces/validation/", content=BROKEN,
                                     headers={"Content-Type": "application/json"})
    assert validation.status_code == 200
    [error] = validation.json()["errors"]
    assert error["name"] == "invalid_json" and error["description"].startswith("the body is not valid JSON: ")
    assert WHERE in error["description"]


def test_a_body_that_is_not_text_is_named_as_such(service) -> None:
    for method, path in (("POST", "/v6/workspaces/"), ("POST", "/v6/workspaces/validation/")):
        response = service.client.request(method, path, content=b'{"title": "\xff"}',
                                          headers={"Content-Type": "application/json"})
        text = response.text
        assert "not valid JSON" in text and "UTF-8" in text, (path, text)
