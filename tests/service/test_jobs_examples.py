"""Replay every workspace-job example of the workspace-management reference (``meiro-workspaces-api.txt``).

The documented JSON is copied below as the document prints it (only its trailing commas removed). Each answer is
compared with :func:`~tests.service.test_management_examples.documented_answer`: the envelope's keys exactly,
every documented field present with the documented JSON type. A job that has just been created has only entered
``waiting`` and has measured nothing yet, so its documented ``stats`` are cut to that.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.fixtures.sqlite_only import database_url, shared_service  # noqa: F401 - SQLite only: storage tests
from tests.service.test_management_examples import NOT_YET, documented_answer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# "List All Workspace Jobs [GET]"
JOB_LIST = json.loads("""
{
    "workspace_jobs": [
        {
            "id": 100,
            "user_id": 200,
            "workspace_id": 300,
            "status": "waiting",
            "settings": {},
            "variables": {},
            "dawg_job_id": 400,
            "stats": {
                "data_volumes": {
                    "/in": 10.0,
                    "/out": 20.0
                },
                "files_count": {
                    "/in": 2,
                    "/out": 3
                },
                "statuses_history": {
                    "waiting": "2017-11-04 07:57:12",
                    "running": "2017-11-04 07:57:14",
                    "finished": "2017-11-04 07:57:20"
                }
            },
            "created": "2017-01-01 15:35:00",
            "origin_created": "2017-01-01 15:30:00"
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

# "Run a Workspace Job [POST]"
JOB_RUN = json.loads("""
{
    "workspace_job": {
        "id": 100,
        "user_id": 200,
        "workspace_id": 300,
        "status": "waiting",
        "settings": {},
        "dawg_job_id": 400,
        "stats": {
            "data_volumes": {
                "/in": 10.0,
                "/out": 20.0
            },
            "files_count": {
                "/in": 2,
                "/out": 3
            },
            "statuses_history": {
                "waiting": "2017-11-04 07:57:12",
                "running": "2017-11-04 07:57:14",
                "finished": "2017-11-04 07:57:20"
            }
        },
        "created": "2017-01-01 15:35:00"
    }
}
""")

# "Retrieve a Workspace Job [GET]"
JOB_RETRIEVE = json.loads("""
{
    "workspace_job": {
        "id": 100,
        "user_id": 200,
        "workspace_id": 300,
        "status": "waiting",
        "settings": {},
        "variables": {},
        "dawg_job_id": 400,
        "stats": {
            "data_volumes": {
                "/in": 10.0,
                "/out": 20.0
            },
            "files_count": {
                "/in": 2,
                "/out": 3
            },
            "statuses_history": {
                "waiting": "2017-11-04 07:57:12",
                "running": "2017-11-04 07:57:14",
                "finished": "2017-11-04 07:57:20"
            }
        },
        "created": "2017-01-01 15:35:00",
        "origin_created": "2017-01-01 15:30:00"
    }
}
""")

# "Cancel a Workspace Job [DELETE]"
JOB_CANCEL = json.loads("""
{
    "message": "OK"
}
""")

# "Retrieve a Workspace's History List [GET] (job history)"
JOB_HISTORY_LIST = json.loads("""
{
    "history_list": [
        {
            "id": null,
            "workspace_job": {
                "id": 200,
                "user_id": 300,
                "workspace_id": 300,
                "status": "running",
                "settings": {},
                "variables": {},
                "dawg_job_id": 400,
                "stats": {},
                "created": "2017-01-01 15:35:00"
            },
            "previous_history": {
                "id": 100,
                "workspace_job": {
                    "id": 200,
                    "user_id": 300,
                    "workspace_id": 300,
                    "status": "waiting",
                    "dawg_job_id": 400,
                    "settings": {},
                    "stats": {},
                    "created": "2017-01-01 11:35:00"
                }
            }
        },
        {
            "id": "100",
            "workspace_job": {
                "id": 200,
                "user_id": 300,
                "workspace_id": 300,
                "status": "waiting",
                "settings": {},
                "dawg_job_id": 400,
                "stats": {},
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

# "Retrieve a Workspace job's History Item [GET]"
JOB_HISTORY_ITEM = json.loads("""
{
    "history": {
        "id": "100",
        "workspace_job": {
            "id": 200,
            "user_id": 300,
            "workspace_id": 300,
            "status": "running",
            "settings": {},
            "dawg_job_id": 400,
            "stats": {},
            "created": "2017-01-01 15:35:00"
        },
        "previous_history": {
            "id": 200,
            "workspace_job": {
                "id": 200,
                "user_id": 300,
                "workspace_id": 300,
                "status": "waiting",
                "settings": {},
                "dawg_job_id": 400,
                "stats": {},
                "created": "2017-01-01 11:35:00"
            }
        }
    }
}
""")

# "List All Workspace Jobs in a Project [GET]"
PROJECT_JOBS = json.loads("""
{
    "workspace_jobs": [
        {
            "id": 100,
            "user_id": 200,
            "workspace_id": 300,
            "status": "waiting",
            "settings": {},
            "stats": {},
            "created": "2017-01-01 15:35:00",
            "origin_created": "2017-01-01 15:30:00"
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

# "List All Workspace Jobs in a Dawg [GET]"
DAWG_JOBS = json.loads("""
{
    "workspace_jobs": [
        {
            "id": 100,
            "user_id": 200,
            "workspace_id": 300,
            "dawg_job_id": 400,
            "status": "waiting",
            "settings": {},
            "stats": {},
            "created": "2017-01-01 15:35:00",
            "origin_created": "2017-01-01 15:30:00"
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

# "List All Workspace Jobs in a Dawg Job [GET]"
DAWG_JOB_JOBS = json.loads("""
{
    "workspace_jobs": [
        {
            "id": 100,
            "user_id": 200,
            "workspace_id": 300,
            "dawg_job_id": 400,
            "status": "waiting",
            "settings": {},
            "stats": {},
            "created": "2017-01-01 15:35:00",
            "origin_created": "2017-01-01 15:30:00"
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

# "List Workspaces' Last Jobs [GET]"
LAST_JOBS = json.loads("""
{
    "last_workspace_jobs": [
        {
            "workspace_id": 300,
            "last_job": {
                "id": 100,
                "user_id": 200,
                "workspace_id": 300,
                "status": "waiting",
                "settings": {},
                "variables": {},
                "stats": {},
                "created": "2017-01-01 15:35:00",
                "origin_created": "2017-01-01 15:30:00"
            }
        }
    ],
    "selection_settings": {
        "workspace_ids": [300]
    }
}
""")

# "List All Workspace Logs [GET]"
LOG_LIST = json.loads("""
{
    "workspace_logs": [
        {
            "id": 100,
            "workspace_job_id": 200,
            "level": "info",
            "text": "log text",
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

# "Retrieve a Workspace Log [GET]"
LOG_ITEM = json.loads("""
{
    "workspace_log": {
        "id": 100,
        "workspace_job_id": 200,
        "level": "info",
        "text": "log text",
        "created": "2017-01-01 15:35:00"
    }
}
""")

# "Delete Workspace Data [DELETE]"
DATA_DELETE = json.loads("""
{
    "message": "ok"
}
""")


OUTSIDE_DAWG_JOBS = NOT_YET | {"dawg_job_id"}
"""Lists also hold jobs that belong to no dawg job (the scan a workspace's creation starts)."""


def _ended(service, ws_id: int, job_id: int) -> dict[str, Any]:
    def ended():
        got = service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}").json()["workspace_job"]
        return got if got["status"] not in ("waiting", "running") else None

    return service.wait_for(ended, timeout=20)


def _scanned_workspace(service, folder) -> int:
    for name, size in (("in/a.csv", 10), ("out/b.csv", 20)):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x" * size)
    created = service.client.post("/workspaces", json={
        "name": f"jobs example {folder.name}", "dawg_id": 100,
        "configuration": {"broker": {"type": "host", "host_path": str(folder)}}})
    assert created.status_code == 201, created.text
    ws_id = created.json()["workspace"]["id"]
    for job in service.client.get(f"/workspaces/{ws_id}/jobs").json()["workspace_jobs"]:
        _ended(service, ws_id, job["id"])  # the scan its creation started
    return ws_id


@pytest.fixture
def finished_job(service, tmp_path) -> tuple[int, int]:
    """A workspace of dawg 100 and its finished usage scan of dawg job 400, started as the document does."""
    ws_id = _scanned_workspace(service, tmp_path / "ws")
    run = copy.deepcopy(JOB_RUN)
    run["workspace_job"]["stats"] = {"statuses_history": {"waiting": "2017-11-04 07:57:12"}}
    posted = service.client.post(f"/workspaces/{ws_id}/jobs", json={"dawg_job_id": 400})
    job = documented_answer(posted, run, status=201)["workspace_job"]
    assert job["status"] == "waiting" and job["dawg_job_id"] == 400
    done = _ended(service, ws_id, job["id"])
    assert done["status"] == "finished" and done["stats"]["data_volumes"] == {"/in": 10, "/out": 20}
    return ws_id, job["id"]


def test_retrieve_and_list_examples(service, finished_job) -> None:
    ws_id, job_id = finished_job
    documented_answer(service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}"), JOB_RETRIEVE)
    listed = documented_answer(service.client.get(f"/workspaces/{ws_id}/jobs"), JOB_LIST, nullable=OUTSIDE_DAWG_JOBS)
    assert job_id in {j["id"] for j in listed["workspace_jobs"]}
    project = documented_answer(service.client.get("/workspace_jobs"), PROJECT_JOBS, nullable=OUTSIDE_DAWG_JOBS)
    assert job_id in {j["id"] for j in project["workspace_jobs"]}
    dawg = documented_answer(service.client.get("/dawgs/100/workspace_jobs"), DAWG_JOBS,
                             nullable=OUTSIDE_DAWG_JOBS)
    assert job_id in {j["id"] for j in dawg["workspace_jobs"]}
    dawg_job = documented_answer(service.client.get("/dawgs/100/jobs/400/workspace_jobs"), DAWG_JOB_JOBS)
    assert [j["id"] for j in dawg_job["workspace_jobs"]] == [job_id]


def test_history_examples(service, finished_job) -> None:
    ws_id, job_id = finished_job
    # The document's first item has the one before it, as every item but the oldest has: the newest two here.
    history = f"/workspaces/{ws_id}/jobs/{job_id}/history"
    listed = documented_answer(service.client.get(f"{history}?order_dir=DESC&limit=2"), JOB_HISTORY_LIST)
    statuses = [item["workspace_job"]["status"] for item in listed["history_list"]]
    assert statuses == ["finished", "running"]
    oldest = service.client.get(f"{history}?limit=1").json()["history_list"]
    assert oldest[0]["workspace_job"]["status"] == "waiting" and "previous_history" not in oldest[0]
    running = listed["history_list"][1]
    item = documented_answer(service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}/history/{running['id']}"),
                             JOB_HISTORY_ITEM)
    assert item["history"]["previous_history"]["workspace_job"]["status"] == "waiting"


def test_last_jobs_example(service, finished_job) -> None:
    ws_id, job_id = finished_job
    got = documented_answer(service.client.get(f"/workspaces/last_jobs?workspace_ids={ws_id}"), LAST_JOBS)
    assert got["last_workspace_jobs"][0]["last_job"]["id"] == job_id


def test_log_examples(service, finished_job) -> None:
    ws_id, job_id = finished_job
    logs = documented_answer(service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}/logs"), LOG_LIST)
    assert all(line["workspace_job_id"] == job_id for line in logs["workspace_logs"])
    line = logs["workspace_logs"][-1]
    one = documented_answer(service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}/logs/{line['id']}"), LOG_ITEM)
    assert one["workspace_log"] == line


def test_cancel_example(start_service, tmp_path) -> None:
    idle = start_service(job_workers=0, usage_interval=0)
    ws_id = idle.client.post("/workspaces", json={
        "name": "cancel example", "configuration": {"broker": {"type": "host", "host_path": str(tmp_path)}}}
    ).json()["workspace"]["id"]
    job = idle.client.post(f"/workspaces/{ws_id}/jobs", json={"kind": "verify"}).json()["workspace_job"]
    answer = documented_answer(idle.client.delete(f"/workspaces/{ws_id}/jobs/{job['id']}"), JOB_CANCEL)
    assert answer == {"message": "OK"}


def test_delete_data_example(service, tmp_path) -> None:
    ws_id = _scanned_workspace(service, tmp_path / "data")
    answer = service.client.delete(f"/workspaces/{ws_id}/data")
    documented_answer(answer, DATA_DELETE)
    job_id = int(answer.headers["location"].rsplit("/", 1)[1])
    assert _ended(service, ws_id, job_id)["stats"]["deleted_files"] == 2
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*"))
