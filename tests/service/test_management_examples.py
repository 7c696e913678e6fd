"""Replay every workspace example of the workspace-management reference (``meiro-workspaces-api.txt``).

The documented JSON is copied below as the document prints it (only its trailing commas removed); ids in the
requests are replaced by real ones. :func:`same_shape` compares each answer with the documented one: the envelope's
keys exactly, every documented field of every object present with the documented JSON type (ids as integers, times
as ``YYYY-MM-DD HH:MM:SS``), and the values the test chose are compared as values. The document shows full objects
everywhere; the service answers them with ``load_full_structure=1`` (the light object is its default). The jobs,
logs and data examples are replayed by ``test_jobs_examples.py``.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Any

import pytest

from brokers.service.store.users import add_user

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FULL = {"load_full_structure": 1}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
NOT_YET = frozenset({"last_run", "last_run_duration"})
"""Documented values of a workspace that has run no job yet: null is accepted."""
UNGIVEN = NOT_YET | {"description", "dawg_id", "disk_usage"}
"""Also null for the input workspaces, created with a name only (no description, dawg, storage)."""
UNSET = {"offset": int, "name_filter": str, "tag_ids": list}
"""Where the document shows null (nothing asked), these types are accepted too."""
LIGHT = {"id", "user_id", "name", "description", "dawg_id", "disk_usage", "high_disk_usage", "disabled", "deleted",
         "last_activity", "author_id", "tags", "created", "version"}
FULL_ONLY = {"settings", "frontend_settings", "variables", "input_settings", "continue_on_failure", "configuration"}
FLAGS = ("high_disk_usage", "continue_on_failure", "disabled", "deleted")

# ------------------------------------------------------------------------------------------- the document's examples
# "Create a Workspace [POST]": the attributes.
CREATE_ATTRIBUTES = {"name": "example workspace", "settings": {"schedules": [{"minute": "*"}]},
                     "description": "workspace description", "disabled": 0}
# "Modify a Workspace [PATCH]": the attributes.
MODIFY_ATTRIBUTES = {"name": "example workspace", "settings": {}, "description": "workspace description",
                     "disabled": 0}
# "Change Workspace owner [PATCH]": the attribute.
OWNER_ATTRIBUTES = {"user_id": 0}

LIST = json.loads("""
{
    "workspaces": [
        {
            "id": 100,
            "user_id": 200,
            "name": "example workspace",
            "description": "workspace description",
            "settings": {
                "schedules": [
                    {
                        "minute": "*",
                        "hour": "*",
                        "day": "*",
                        "month": "*",
                        "day_of_week": "*"
                    }
                ],
                "notification_emails": ["mr@foo.test"],
                "delete_data_after_success": true
            },
            "frontend_settings": {},
            "variables": {},
            "dawg_id": 100,
            "input_settings": {
                "inputs": [500, 600]
            },
            "disk_usage": 1024,
            "high_disk_usage": 0,
            "continue_on_failure": 0,
            "disabled": 0,
            "deleted": 0,
            "last_run": "2017-02-01 15:35:00",
            "last_run_duration": 60,
            "last_activity": "2017-03-01 15:35:00",
            "author_id": 400,
            "tags": [],
            "created": "2017-01-01 15:35:00"
        }
    ],
    "selection_settings": {
        "limit": 20,
        "offset": null,
        "order_by": "id",
        "order_dir": "ASC",
        "name_filter": null,
        "tag_ids": null,
        "show_enabled": true,
        "show_disabled": true
    }
}
""")

CREATE = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "example workspace",
        "description": "workspace description",
        "settings": {
            "schedules": [
                {
                    "minute": "*",
                    "hour": "*",
                    "day": "*",
                    "month": "*",
                    "day_of_week": "*"
                }
            ],
            "notification_emails": ["mr@foo.test"],
            "delete_data_after_success": true
        },
        "frontend_settings": {},
        "variables": {},
        "dawg_id": 100,
        "input_settings": {
            "inputs": [500, 600]
        },
        "disk_usage": 0,
        "high_disk_usage": 0,
        "continue_on_failure": 0,
        "disabled": 0,
        "deleted": 0,
        "created": "2017-01-01 15:35:00"
    }
}
""")

BULK_BODY = json.loads("""
[
    {
        "id": 100,
        "dawg_id": 100,
        "workspace_id": 400,
        "name": "workspace name",
        "description": "workspace description",
        "input_settings": {
            "inputs": [500, 600]
        },
        "settings": {},
        "frontend_settings": {},
        "continue_on_failure": 0,
        "disabled": 0
    }
]
""")

BULK = json.loads("""
{
    "workspaces": [
        {
            "id": 100,
            "user_id": 200,
            "name": "example workspace",
            "description": "workspace description",
            "settings": {
                "schedules": [
                    {
                        "minute": "*",
                        "hour": "*",
                        "day": "*",
                        "month": "*",
                        "day_of_week": "*"
                    }
                ],
                "notification_emails": ["mr@foo.test"],
                "delete_data_after_success": true
            },
            "frontend_settings": {},
            "variables": {},
            "dawg_id": 100,
            "input_settings": {
                "inputs": [500, 600]
            },
            "disk_usage": 1024,
            "high_disk_usage": 0,
            "continue_on_failure": 0,
            "disabled": 0,
            "deleted": 0,
            "last_run": "2017-02-01 15:35:00",
            "last_run_duration": 60,
            "last_activity": "2017-03-01 15:35:00",
            "author_id": 400,
            "tags": [],
            "created": "2017-01-01 15:35:00"
        }
    ]
}
""")

RETRIEVE = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "example workspace",
        "description": "workspace description",
        "settings": {
            "schedules": [
                {
                    "minute": "*",
                    "hour": "*",
                    "day": "*",
                    "month": "*",
                    "day_of_week": "*"
                }
            ],
            "notification_emails": ["mr@foo.test"],
            "delete_data_after_success": true
        },
        "frontend_settings": {},
        "variables": {},
        "dawg_id": 100,
        "input_settings": {
            "inputs": [500, 600]
        },
        "disk_usage": 1024,
        "high_disk_usage": 0,
        "continue_on_failure": 0,
        "disabled": 0,
        "deleted": 0,
        "last_run": "2017-02-01 15:35:00",
        "last_run_duration": 60,
        "last_activity": "2017-03-01 15:35:00",
        "author_id": 400,
        "tags": [],
        "created": "2017-01-01 15:35:00"
    }
}
""")

MODIFY = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "example workspace",
        "description": "workspace description",
        "settings": {
            "schedules": [
                {
                    "minute": "*",
                    "hour": "*",
                    "day": "*",
                    "month": "*",
                    "day_of_week": "*"
                }
            ],
            "notification_emails": ["mr@foo.test"],
            "delete_data_after_success": true
        },
        "frontend_settings": {},
        "variables": {},
        "dawg_id": 100,
        "input_settings": {
            "inputs": [500, 600]
        },
        "disk_usage": 1024,
        "high_disk_usage": 0,
        "continue_on_failure": 0,
        "disabled": 0,
        "deleted": 0,
        "last_run": "2017-02-01 15:35:00",
        "last_activity": "2017-03-01 15:35:00",
        "author_id": 400,
        "tags": [],
        "created": "2017-01-01 15:35:00"
    }
}
""")

DELETE = json.loads("""
{
    "message": "OK"
}
""")

CLONE = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "clone_example workspace",
        "description": "workspace description",
        "settings": {
            "schedules": [
                {
                    "minute": "*",
                    "hour": "*",
                    "day": "*",
                    "month": "*",
                    "day_of_week": "*"
                }
            ],
            "notification_emails": ["mr@foo.test"],
            "delete_data_after_success": true
        },
        "frontend_settings": {},
        "variables": {},
        "dawg_id": 100,
        "input_settings": {
            "inputs": [500, 600]
        },
        "disk_usage": 1024,
        "high_disk_usage": 0,
        "continue_on_failure": 0,
        "disabled": 0,
        "deleted": 0,
        "last_run": "2017-02-01 15:35:00",
        "last_activity": "2017-03-01 15:35:00",
        "author_id": 400,
        "tags": [],
        "created": "2017-01-01 15:35:00"
    }
}
""")

OWNER = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "example workspace",
        "description": "workspace description",
        "settings": {
            "schedules": [
                {
                    "minute": "*",
                    "hour": "*",
                    "day": "*",
                    "month": "*",
                    "day_of_week": "*"
                }
            ],
            "notification_emails": ["mr@foo.test"],
            "delete_data_after_success": true
        },
        "frontend_settings": {},
        "variables": {},
        "dawg_id": 100,
        "input_settings": {
            "inputs": [500, 600]
        },
        "disk_usage": 1024,
        "high_disk_usage": 0,
        "continue_on_failure": 0,
        "disabled": 0,
        "deleted": 0,
        "last_run": "2017-02-01 15:35:00",
        "last_activity": "2017-03-01 15:35:00",
        "author_id": 400,
        "tags": [],
        "created": "2017-01-01 15:35:00"
    }
}
""")

HISTORY_LIST = json.loads("""
{
    "history_list": [
        {
            "id": null,
            "workspace": {
                "id": 200,
                "user_id": 300,
                "name": "example workspace",
                "description": "workspace description",
                "settings": {},
                "frontend_settings": {},
                "variables": {},
                "dawg_id": 100,
                "input_settings": {
                    "inputs": [500, 600]
                },
                "continue_on_failure": 0,
                "disabled": 0,
                "created": "2017-01-01 15:35:00"
            },
            "previous_history": {
                "id": 100,
                "workspace": {
                    "id": 200,
                    "user_id": 300,
                    "name": "test",
                    "description": "workspace description",
                    "settings": {},
                    "frontend_settings": {},
                    "variables": {},
                    "dawg_id": 100,
                    "input_settings": {
                        "inputs": [500, 600]
                    },
                    "continue_on_failure": 0,
                    "disabled": 0,
                    "created": "2017-01-01 11:35:00"
                }
            }
        },
        {
            "id": "100",
            "workspace": {
                "id": 200,
                "user_id": 300,
                "name": "test",
                "description": "workspace description",
                "settings": {},
                "frontend_settings": {},
                "variables": {},
                "dawg_id": 100,
                "input_settings": {
                    "inputs": [500, 600]
                },
                "continue_on_failure": 0,
                "disabled": 0,
                "created": "2017-01-01 11:35:00"
            }
        }
    ],
    "selection_settings": {
        "limit": 20,
        "offset": null,
        "order_by": "id",
        "order_dir": "ASC"
    }
}
""")

HISTORY_ITEM = json.loads("""
{
    "history": {
        "id": "100",
        "workspace": {
            "id": 200,
            "user_id": 300,
            "name": "example workspace",
            "description": "workspace description",
            "settings": {},
            "frontend_settings": {},
            "variables": {},
            "dawg_id": 100,
            "input_settings": {
                "inputs": [500, 600]
            },
            "continue_on_failure": 0,
            "disabled": 0,
            "created": "2017-01-01 15:35:00"
        },
        "previous_history": {
            "id": 200,
            "workspace": {
                "id": 200,
                "user_id": 300,
                "name": "test",
                "description": "workspace description",
                "settings": {},
                "frontend_settings": {},
                "variables": {},
                "dawg_id": 100,
                "input_settings": {
                    "inputs": [500, 600]
                },
                "continue_on_failure": 0,
                "disabled": 0,
                "created": "2017-01-01 11:35:00"
            }
        }
    }
}
""")

REVERT = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "example workspace",
        "description": "workspace description",
        "settings": {},
        "frontend_settings": {},
        "variables": {},
        "dawg_id": 100,
        "input_settings": {
            "inputs": [500, 600]
        },
        "continue_on_failure": 0,
        "disabled": 0,
        "created": "2017-01-01 15:35:00"
    }
}
""")

TRASH_LIST = json.loads("""
{
    "trashed_workspaces": [
        {
            "id": 100,
            "user_id": 200,
            "name": "example workspace",
            "description": "workspace description",
            "settings": {
            "schedules": [
                    {
                        "minute": "*",
                        "hour": "*",
                        "day": "*",
                        "month": "*",
                        "day_of_week": "*"
                    }
                ]
            },
            "disabled": 0,
            "deleted": 1,
            "created": "2017-01-01 15:35:00"
        }
    ],
    "selection_settings": {
        "limit": 20,
        "offset": null,
        "order_by": "id",
        "order_dir": "ASC"
    }
}
""")

RESTORE = json.loads("""
{
    "workspace": {
        "id": 100,
        "user_id": 200,
        "name": "example workspace",
        "description": "workspace description",
        "settings": {
            "schedules": [
                {
                    "minute": "*",
                    "hour": "*",
                    "day": "*",
                    "month": "*",
                    "day_of_week": "*"
                }
            ]
        },
        "frontend_settings": {},
        "variables": {},
        "disabled": 0,
        "deleted": 0,
        "created": "2017-01-01 15:35:00"
    }
}
""")

DAWG_LIST = json.loads("""
{
    "workspaces": [
        {
            "id": 100,
            "user_id": 200,
            "name": "example workspace",
            "description": "workspace description",
            "settings": {
                "schedules": [
                    {
                        "minute": "*",
                        "hour": "*",
                        "day": "*",
                        "month": "*",
                        "day_of_week": "*"
                    }
                ],
                "notification_emails": ["mr@foo.test"],
                "delete_data_after_success": true
            },
            "frontend_settings": {},
            "variables": {},
            "dawg_id": 100,
            "input_settings": {
                "inputs": [500, 600]
            },
            "disk_usage": 1024,
            "continue_on_failure": 0,
            "disabled": 0,
            "deleted": 0,
            "last_run": "2017-02-01 15:35:00",
            "last_run_duration": 60,
            "last_activity": "2017-03-01 15:35:00",
            "author_id": 400,
            "tags": [],
            "created": "2017-01-01 15:35:00"
        }
    ],
    "selection_settings": {
        "limit": 20,
        "offset": null,
        "order_by": "id",
        "order_dir": "ASC"
    }
}
""")


# ------------------------------------------------------------------------------------------------------- helpers
def same_shape(actual: Any, documented: Any, nullable: frozenset[str] = NOT_YET, where: str = "$") -> None:
    """Assert that ``actual`` has the shape of ``documented``.

    Objects: every documented key is present (more are allowed), each value of the documented shape; ``id`` and
    ``*_id`` are integers (the document writes some as strings or null); keys in ``nullable`` may be null. Lists:
    each element has the shape of the documented first one. Scalars: the same JSON type (a boolean is no number);
    a documented time is a time of the same format.
    """
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        missing = sorted(set(documented) - set(actual))
        assert not missing, f"{where}: documented fields missing: {missing} (got {sorted(actual)})"
        for key, value in documented.items():
            item, here = actual[key], f"{where}.{key}"
            if item is None and key in nullable:
                continue
            if key == "id" or key.endswith("_id"):
                assert type(item) is int, f"{here}: {item!r} is not an integer id"
            elif value is None:
                assert item is None or isinstance(item, UNSET.get(key, type(None))), f"{here}: {item!r}"
            else:
                same_shape(item, value, nullable, here)
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        for index, element in enumerate(actual):
            if documented:
                same_shape(element, documented[0], nullable, f"{where}[{index}]")
    elif isinstance(documented, float):  # the document's data volumes: any number (bytes are whole)
        assert type(actual) in (int, float), f"{where}: {actual!r} is not a number"
    elif isinstance(documented, (bool, int)):
        assert type(actual) is type(documented), f"{where}: {actual!r} is not a {type(documented).__name__}"
    elif isinstance(documented, str):
        assert isinstance(actual, str), f"{where}: {actual!r} is not a string"
        if TIMESTAMP.match(documented):
            assert TIMESTAMP.match(actual), f"{where}: {actual!r} is not a time like {documented!r}"
    else:
        raise AssertionError(f"{where}: the document has no {documented!r}")


def documented_answer(response, documented: dict[str, Any], status: int = 200,
                      nullable: frozenset[str] = NOT_YET) -> dict[str, Any]:
    """Check an answer against the documented one: status, exactly the documented envelope, the shape inside."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == set(documented), f"envelope {sorted(body)} is not the documented {sorted(documented)}"
    same_shape(body, documented, nullable)
    for obj in _workspaces(body):
        for flag in FLAGS:
            assert obj.get(flag, 0) in (0, 1), (flag, obj[flag])
    return body


def _workspaces(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = [body["workspace"]] if "workspace" in body else []
    for key in ("workspaces", "trashed_workspaces"):
        found += body.get(key, [])
    return found


def create(service, **fields: Any) -> dict[str, Any]:
    """``POST /workspaces``; return the full object."""
    response = service.client.post("/workspaces", params=FULL, json=fields)
    assert response.status_code == 201, response.text
    return response.json()["workspace"]


def documented_workspace(service, folder) -> dict[str, Any]:
    """The documented workspace, for real: its settings, dawg 100, two input workspaces, 1024 bytes measured."""
    (folder / "data.bin").write_bytes(b"x" * 1024)
    inputs = [create(service, name=f"input {n}")["id"] for n in (500, 600)]
    example = LIST["workspaces"][0]
    ws = create(service, name=example["name"], description=example["description"], settings=example["settings"],
                dawg_id=example["dawg_id"], input_settings={"inputs": inputs}, continue_on_failure=0, disabled=0,
                configuration={"broker": {"type": "host", "host_path": str(folder)}})
    return service.wait_for(lambda: _measured(service, ws["id"]))


def _measured(service, ws_id: int) -> dict[str, Any] | None:
    """The workspace once its first usage scan has ended (its measurement stored, its last run noted)."""
    ws = service.client.get(f"/workspaces/{ws_id}", params=FULL).json()["workspace"]
    return ws if ws["disk_usage"] is not None and ws["last_run"] is not None else None


def service_user(service) -> int:
    return int(service.app.state.service.service_actor.id)


def new_user(service) -> int:
    with service.app.state.service.sessions() as session, session.begin():
        user, _token = add_user(session, f"owner-{uuid.uuid4().hex[:12]}")
        return int(user.id)


# --------------------------------------------------------------------------------------------------------- tests
def test_list_example_full_structure(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    body = documented_answer(service.client.get("/workspaces", params=FULL), LIST, nullable=UNGIVEN)
    assert body["selection_settings"] == {**LIST["selection_settings"], "offset": body["selection_settings"]["offset"]}
    assert body["selection_settings"]["offset"] in (None, 0)
    by_name = {w["name"]: w for w in body["workspaces"]}
    assert sorted(by_name) == ["example workspace", "input 500", "input 600"]
    example = by_name["example workspace"]
    same_shape(example, LIST["workspaces"][0])  # strictly: only the job fields may be null
    assert example == ws | {"last_activity": example["last_activity"]}
    assert (example["disk_usage"], example["high_disk_usage"]) == (1024, 0)
    assert example["settings"] == LIST["workspaces"][0]["settings"]
    assert example["input_settings"]["inputs"] == [by_name["input 500"]["id"], by_name["input 600"]["id"]]
    assert example["user_id"] == example["author_id"] == service_user(service)
    assert [w["id"] for w in body["workspaces"]] == sorted(w["id"] for w in body["workspaces"])  # order_by id ASC


def test_list_example_light_by_default(service, tmp_path) -> None:
    documented_workspace(service, tmp_path)
    light_documented = {k: v for k, v in LIST["workspaces"][0].items() if k in LIGHT}
    body = documented_answer(service.client.get("/workspaces"), {**LIST, "workspaces": [light_documented]},
                             nullable=UNGIVEN)
    assert len(body["workspaces"]) == 3
    for obj in body["workspaces"]:
        assert set(obj) >= LIGHT and not set(obj) & FULL_ONLY, sorted(obj)
    example = next(w for w in body["workspaces"] if w["name"] == "example workspace")
    same_shape(example, light_documented)
    assert (example["dawg_id"], example["disk_usage"]) == (100, 1024)


def test_create_example(service) -> None:
    body = documented_answer(service.client.post("/workspaces", params=FULL, json=CREATE_ATTRIBUTES), CREATE,
                             status=201, nullable=frozenset({"dawg_id", "disk_usage"}))  # neither was given
    ws = body["workspace"]
    assert {k: ws[k] for k in CREATE_ATTRIBUTES} == {
        **CREATE_ATTRIBUTES, "settings": {**CREATE["workspace"]["settings"], "notification_emails": [],
                                          "delete_data_after_success": False}}
    assert (ws["dawg_id"], ws["disk_usage"], ws["deleted"], ws["input_settings"]) == (None, None, 0, {"inputs": []})
    assert ws["user_id"] == ws["author_id"] == service_user(service)


def test_settings_are_complete_when_none_were_given(service, tmp_path) -> None:
    # The document shows every workspace with all three settings; one created with a name only, or through
    # the v6 API, is no exception.
    empty = {"schedules": [], "notification_emails": [], "delete_data_after_success": False}
    ws = create(service, name="no settings")
    v6 = service.client.post("/v6/workspaces/", json={"title": "Through v6", "configuration": {
        "broker": {"type": "host", "host_path": str(tmp_path)}}})
    assert v6.status_code == 201, v6.text
    for ws_id in (ws["id"], v6.json()["id"]):
        answer = service.client.get(f"/workspaces/{ws_id}", params=FULL).json()["workspace"]
        assert answer["settings"] == empty, answer["name"]


def test_create_example_settings_round_trip(service) -> None:
    documented = CREATE["workspace"]["settings"]
    given = {**documented, "schedules": [{"minute": "*"}]}  # the attribute's partial schedule
    ws = create(service, name=CREATE_ATTRIBUTES["name"], settings=given)
    assert ws["settings"] == documented  # the schedule filled to five fields, the rest as given
    again = service.client.get(f"/workspaces/{ws['id']}", params=FULL).json()["workspace"]
    assert again["settings"] == documented


def test_bulk_patch_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    item = {**BULK_BODY[0], "id": ws["id"], "input_settings": {"inputs": ws["input_settings"]["inputs"][::-1]}}
    assert item["workspace_id"] == 400  # as documented: accepted and ignored
    body = documented_answer(service.client.patch("/workspaces", params=FULL, json=[item]), BULK)
    [changed] = body["workspaces"]
    same_shape(changed, BULK["workspaces"][0])
    assert changed["id"] == ws["id"]
    assert {k: changed[k] for k in ("name", "description", "dawg_id", "input_settings", "frontend_settings",
                                    "continue_on_failure", "disabled")} == {
        k: item[k] for k in ("name", "description", "dawg_id", "input_settings", "frontend_settings",
                             "continue_on_failure", "disabled")}
    assert changed["settings"] == {"schedules": [], "notification_emails": [], "delete_data_after_success": False}
    assert changed["version"] == ws["version"] + 1
    assert service.client.get(f"/workspaces/{ws['id']}", params=FULL).json()["workspace"] == changed


def test_retrieve_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    response = service.client.get(f"/workspaces/{ws['id']}", params=FULL)
    body = documented_answer(response, RETRIEVE)
    assert body["workspace"] == ws
    assert response.headers["ETag"] == f'"{ws["version"]}"'
    assert service.client.get("/workspaces/999999").status_code == 404


def test_modify_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    attributes = {**MODIFY_ATTRIBUTES, "name": "modified workspace"}
    body = documented_answer(service.client.patch(f"/workspaces/{ws['id']}", params=FULL, json=attributes), MODIFY)
    changed = body["workspace"]
    assert (changed["id"], changed["name"], changed["description"], changed["disabled"]) == (
        ws["id"], "modified workspace", "workspace description", 0)
    assert changed["settings"] == {"schedules": [], "notification_emails": [], "delete_data_after_success": False}
    assert (changed["dawg_id"], changed["input_settings"]) == (ws["dawg_id"], ws["input_settings"])  # not given


def test_delete_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    response = service.client.delete(f"/workspaces/{ws['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == DELETE
    assert service.client.get(f"/workspaces/{ws['id']}").status_code == 404
    assert ws["id"] not in [w["id"] for w in service.client.get("/workspaces").json()["workspaces"]]


def test_clone_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    body = documented_answer(service.client.post(f"/workspaces/{ws['id']}", params=FULL), CLONE,
                             nullable=NOT_YET | {"disk_usage"})  # the clone is measured in the background
    clone = body["workspace"]
    assert clone["name"] == CLONE["workspace"]["name"] == f"clone_{ws['name']}"
    assert clone["id"] != ws["id"]
    same = ("description", "settings", "frontend_settings", "variables", "dawg_id", "input_settings",
            "continue_on_failure", "disabled", "tags", "configuration")
    assert {k: clone[k] for k in same} == {k: ws[k] for k in same}
    assert clone["deleted"] == 0


def test_owner_change_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    user_id = new_user(service)
    body = documented_answer(service.client.patch(f"/workspaces/{ws['id']}/owner", params=FULL,
                                                  json={**OWNER_ATTRIBUTES, "user_id": user_id}), OWNER)
    assert (body["workspace"]["user_id"], body["workspace"]["author_id"]) == (user_id, ws["author_id"])
    assert service.client.get(f"/workspaces/{ws['id']}").json()["workspace"]["user_id"] == user_id


def _history_of(service, ws_id: int) -> dict[str, Any]:
    # Every item has the shape of the document's last one; those with a previous item, of its first (checked below).
    without_previous = {**HISTORY_LIST, "history_list": HISTORY_LIST["history_list"][1:]}
    return documented_answer(service.client.get(f"/workspaces/{ws_id}/history"), without_previous)


def _check_history(items: list[dict[str, Any]]) -> None:
    """The first item has no previous one; every later one names the item before it."""
    with_previous, first = HISTORY_LIST["history_list"]
    assert "previous_history" not in items[0]
    same_shape(items[0], first)
    for before, item in itertools.pairwise(items):
        same_shape(item, with_previous)
        assert item["previous_history"]["id"] == before["id"]
        assert item["previous_history"]["workspace"] == before["workspace"]


def test_history_list_example(service) -> None:
    ws = create(service, name="test", description="workspace description", dawg_id=100)
    service.client.patch(f"/workspaces/{ws['id']}", json={"name": "example workspace"}).raise_for_status()
    body = _history_of(service, ws["id"])
    items = body["history_list"]
    assert len(items) == 2
    _check_history(items)
    assert [i["workspace"]["name"] for i in items] == ["test", "example workspace"]
    assert [i["workspace"]["id"] for i in items] == [ws["id"], ws["id"]]
    assert body["selection_settings"]["limit"] == HISTORY_LIST["selection_settings"]["limit"]
    assert (body["selection_settings"]["order_by"], body["selection_settings"]["order_dir"]) == ("id", "ASC")


def test_history_item_example(service) -> None:
    ws = create(service, name="test", description="workspace description", dawg_id=100)
    service.client.patch(f"/workspaces/{ws['id']}", json={"name": "example workspace"}).raise_for_status()
    first, second = _history_of(service, ws["id"])["history_list"]
    body = documented_answer(service.client.get(f"/workspaces/{ws['id']}/history/{second['id']}"), HISTORY_ITEM)
    assert body["history"] == second
    assert (body["history"]["workspace"]["name"], body["history"]["previous_history"]["id"]) == (
        "example workspace", first["id"])
    oldest = service.client.get(f"/workspaces/{ws['id']}/history/{first['id']}")
    assert oldest.status_code == 200, oldest.text
    assert "previous_history" not in oldest.json()["history"]


def test_revert_example(service) -> None:
    ws = create(service, name="test", description="workspace description", dawg_id=100)
    service.client.patch(f"/workspaces/{ws['id']}", json={"name": "example workspace"}).raise_for_status()
    first, second = _history_of(service, ws["id"])["history_list"]
    body = documented_answer(service.client.patch(f"/workspaces/{ws['id']}/history/{first['id']}", params=FULL),
                             REVERT)
    assert (body["workspace"]["id"], body["workspace"]["name"]) == (ws["id"], "test")
    items = _history_of(service, ws["id"])["history_list"]
    assert [i["id"] for i in items[:2]] == [first["id"], second["id"]]  # never rewritten: a new item
    assert len(items) == 3
    _check_history(items)
    assert items[2]["workspace"]["name"] == "test"


def test_trash_list_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    service.client.delete(f"/workspaces/{ws['id']}").raise_for_status()
    body = documented_answer(service.client.get("/workspaces/trash", params=FULL), TRASH_LIST)
    [trashed] = body["trashed_workspaces"]
    assert (trashed["id"], trashed["name"], trashed["deleted"]) == (ws["id"], ws["name"], 1)
    assert trashed["settings"] == ws["settings"]
    assert body["selection_settings"]["limit"] == TRASH_LIST["selection_settings"]["limit"]


def test_restore_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    service.client.delete(f"/workspaces/{ws['id']}").raise_for_status()
    body = documented_answer(service.client.patch(f"/workspaces/trash/{ws['id']}", params=FULL), RESTORE)
    restored = body["workspace"]
    assert (restored["id"], restored["name"], restored["deleted"]) == (ws["id"], ws["name"], 0)
    assert restored["settings"] == ws["settings"]
    assert service.client.get("/workspaces/trash").json()["trashed_workspaces"] == []
    assert service.client.get(f"/workspaces/{ws['id']}").status_code == 200


def test_dawg_workspaces_example(service, tmp_path) -> None:
    ws = documented_workspace(service, tmp_path)
    create(service, name="elsewhere", dawg_id=200)
    body = documented_answer(service.client.get("/dawgs/100/workspaces", params=FULL), DAWG_LIST)
    assert [w["id"] for w in body["workspaces"]] == [ws["id"]]  # the inputs and dawg 200 are not in dawg 100
    same_shape(body["workspaces"][0], DAWG_LIST["workspaces"][0])
    assert body["workspaces"][0] == ws | {"last_activity": body["workspaces"][0]["last_activity"]}
    settings = body["selection_settings"]
    assert set(settings) >= set(DAWG_LIST["selection_settings"])
    assert (settings["limit"], settings["order_by"], settings["order_dir"]) == (20, "id", "ASC")
    assert service.client.get("/dawgs/300/workspaces").json()["workspaces"] == []
