"""The workspace-jobs endpoints of the management document: shapes, statuses, history, logs, listings, refusals."""

from __future__ import annotations

import itertools

import pytest

from brokers.service.store.users import add_user


def host(path) -> dict:
    return {"broker": {"type": "host", "host_path": str(path)}}


def create(service, name: str, **fields) -> dict:
    response = service.client.post("/workspaces", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()["workspace"]


_users = itertools.count(1)


def user(service, name: str) -> dict:
    with service.app.state.service.sessions() as session, session.begin():
        _, token = add_user(session, f"{name}-{next(_users)}")
        return {"X-Access-Token": token}


def finished(service, ws_id: int, job_id: int) -> dict:
    def ended():
        got = service.client.get(f"/workspaces/{ws_id}/jobs/{job_id}?load_full_structure=1").json()["workspace_job"]
        return got if got["status"] not in ("waiting", "running") else None

    return service.wait_for(ended, timeout=20)


@pytest.fixture
def idle(start_service):
    """A service that runs no job itself (no worker): jobs stay waiting."""
    return start_service(job_workers=0, usage_interval=0)


def test_a_usage_scan_end_to_end(service, tmp_path) -> None:
    root = tmp_path / "data"
    for path, size in {"in/a.csv": 100, "in/deep/b.csv": 250, "out/c.bin": 4096, "top.txt": 7}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x" * size)
    ws = create(service, "scanned", configuration=host(root))
    posted = service.client.post(f"/workspaces/{ws['id']}/jobs")
    assert posted.status_code in (200, 201)  # 200: it joined the scan that the creation started
    job = posted.json()["workspace_job"]
    assert job["kind"] == "usage_scan" and job["workspace_id"] == ws["id"]
    done = finished(service, ws["id"], job["id"])
    assert done["status"] == "finished"
    assert done["stats"]["data_volumes"] == {"/in": 350, "/out": 4096, "/": 7}
    assert done["stats"]["files_count"] == {"/in": 2, "/out": 1, "/": 1}
    assert done["stats"]["used_size"] == 4453 and done["stats"]["file_count"] == 4
    assert list(done["stats"]["statuses_history"]) == ["waiting", "running", "finished"]
    assert done["progress"] == {"files_total": 4, "files_done": 4, "bytes_total": 4453, "bytes_done": 4453}
    assert done["attempts"] == 1 and done["started"] and done["ended"]
    # The measurement is the workspace's, in every API.
    full = service.client.get(f"/workspaces/{ws['id']}?load_full_structure=1").json()["workspace"]
    assert full["disk_usage"] == 4453 and full["last_run"] is not None and full["last_run_duration"] >= 0
    assert service.client.get(f"/v6/workspaces/{ws['id']}/").json()["used_size"] == 4453
    # Its log, line by line, and one line by id.
    logs = service.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/logs").json()
    texts = [line["text"] for line in logs["workspace_logs"]]
    assert texts[0].startswith("usage_scan queued") and texts[1].startswith("started on")
    assert "measured 4 files, 4453 bytes in 3 folders" in texts[2]
    assert {line["level"] for line in logs["workspace_logs"]} == {"info"}
    assert logs["selection_settings"] == {"limit": 20, "offset": None, "order_by": "id", "order_dir": "ASC"}
    first = logs["workspace_logs"][0]
    one = service.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/logs/{first['id']}").json()
    assert one == {"workspace_log": first}
    # Its history: the state after each status change, each with the one before.
    history = service.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/history").json()["history_list"]
    assert [item["workspace_job"]["status"] for item in history] == ["waiting", "running", "finished"]
    assert "previous_history" not in history[0]
    assert history[2]["previous_history"]["workspace_job"]["status"] == "running"
    item = service.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/history/{history[1]['id']}").json()
    assert item["history"]["workspace_job"]["status"] == "running"
    assert item["history"]["previous_history"]["id"] == history[0]["id"]


def test_a_usage_scan_joins_the_one_waiting_other_kinds_do_not(idle, tmp_path) -> None:
    ws = create(idle, "joined", configuration=host(tmp_path))
    # Creating the workspace with storage asked for its first scan; asking again joins it.
    first = idle.client.post(f"/workspaces/{ws['id']}/jobs", json={"kind": "usage_scan"})
    second = idle.client.post(f"/workspaces/{ws['id']}/jobs")
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["workspace_job"]["id"] == first.json()["workspace_job"]["id"]
    listed = idle.client.get(f"/workspaces/{ws['id']}/jobs").json()["workspace_jobs"]
    assert [(j["kind"], j["origin"]) for j in listed] == [("usage_scan", "refresh")]
    # Once that one has been canceled, a new request starts a new scan.
    idle.client.delete(f"/workspaces/{ws['id']}/jobs/{first.json()['workspace_job']['id']}")
    third = idle.client.post(f"/workspaces/{ws['id']}/jobs")
    assert third.status_code == 201 and third.json()["workspace_job"]["origin"] == "request"
    cleanups = [idle.client.post(f"/workspaces/{ws['id']}/jobs", json={"kind": "cleanup"}) for _ in range(2)]
    assert [r.status_code for r in cleanups] == [201, 201]
    assert cleanups[0].json()["workspace_job"]["id"] != cleanups[1].json()["workspace_job"]["id"]
    assert cleanups[0].json()["workspace_job"]["settings"] == {"older_than": 3600.0}


def test_cancel_a_waiting_job_and_an_ended_one(idle, tmp_path) -> None:
    ws = create(idle, "canceled", configuration=host(tmp_path))
    job = idle.client.post(f"/workspaces/{ws['id']}/jobs", json={"kind": "verify"}).json()["workspace_job"]
    answer = idle.client.delete(f"/workspaces/{ws['id']}/jobs/{job['id']}")
    assert answer.status_code == 200 and answer.json()["message"] == "OK"
    got = idle.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}").json()["workspace_job"]
    assert got["status"] == "canceled" and list(got["stats"]["statuses_history"]) == ["waiting", "canceled"]
    logs = idle.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/logs").json()["workspace_logs"]
    assert logs[-1]["text"].endswith("before it started: nothing was done")
    again = idle.client.delete(f"/workspaces/{ws['id']}/jobs/{job['id']}")
    assert again.status_code == 409 and again.json()["errors"][0]["name"] == "job_ended"


def test_lists_page_order_and_filter(idle, tmp_path) -> None:
    one = create(idle, "listed-one", configuration=host(tmp_path), dawg_id=7)
    two = create(idle, "listed-two", configuration=host(tmp_path), dawg_id=8)
    ids = [idle.client.post(f"/workspaces/{one['id']}/jobs", json={"kind": "cleanup", "dawg_job_id": 70 + i})
           .json()["workspace_job"]["id"] for i in range(3)]
    other = idle.client.post(f"/workspaces/{two['id']}/jobs", json={"kind": "verify"}).json()["workspace_job"]["id"]
    page = idle.client.get(f"/workspaces/{one['id']}/jobs?limit=2&offset=1&order_by=id&order_dir=desc").json()
    assert [j["id"] for j in page["workspace_jobs"]] == [ids[1], ids[0]]
    assert page["selection_settings"] == {"limit": 2, "offset": 1, "order_by": "id", "order_dir": "DESC"}
    everything = idle.client.get("/workspace_jobs?limit=100").json()
    assert {ids[0], ids[1], ids[2], other} <= {j["id"] for j in everything["workspace_jobs"]}
    assert everything["selection_settings"]["include_deleted_workspaces_jobs"] is False
    by_dawg = idle.client.get("/dawgs/7/workspace_jobs?limit=100").json()["workspace_jobs"]
    assert {j["workspace_id"] for j in by_dawg} == {one["id"]} and set(ids) <= {j["id"] for j in by_dawg}
    by_dawg_job = idle.client.get("/dawgs/7/jobs/71/workspace_jobs").json()["workspace_jobs"]
    assert [j["id"] for j in by_dawg_job] == [ids[1]] and by_dawg_job[0]["dawg_job_id"] == 71
    assert idle.client.get("/dawgs/8/jobs/71/workspace_jobs").json()["workspace_jobs"] == []
    # A trashed workspace's jobs are listed only when asked for.
    assert idle.client.delete(f"/workspaces/{two['id']}").status_code == 200
    live = {j["id"] for j in idle.client.get("/workspace_jobs?limit=100").json()["workspace_jobs"]}
    assert other not in live
    with_deleted = idle.client.get("/workspace_jobs?limit=100&include_deleted_workspaces_jobs=1").json()
    assert other in {j["id"] for j in with_deleted["workspace_jobs"]}
    assert idle.client.get(f"/workspaces/{two['id']}/jobs/{other}").status_code == 404


def test_last_jobs(idle, tmp_path) -> None:
    busy = create(idle, "last-busy", configuration=host(tmp_path))
    quiet = create(idle, "last-quiet")
    for kind in ("cleanup", "verify"):
        newest = idle.client.post(f"/workspaces/{busy['id']}/jobs", json={"kind": kind}).json()["workspace_job"]
    got = idle.client.get(f"/workspaces/last_jobs?workspace_ids={quiet['id']}&workspace_ids={busy['id']}").json()
    assert got["selection_settings"] == {"workspace_ids": [quiet["id"], busy["id"]]}
    assert got["last_workspace_jobs"][0] == {"workspace_id": quiet["id"], "last_job": None}
    assert got["last_workspace_jobs"][1]["last_job"]["id"] == newest["id"]
    assert got["last_workspace_jobs"][1]["last_job"]["kind"] == "verify"
    missing = idle.client.get("/workspaces/last_jobs?workspace_ids=999999")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "workspace_ids"


def test_delete_data_runs_a_job_and_says_so(service, tmp_path) -> None:
    for name in ("a", "b/c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"data")
    ws = create(service, "emptied", configuration=host(tmp_path))
    answer = service.client.delete(f"/workspaces/{ws['id']}/data")
    assert answer.status_code == 200
    location = answer.headers["location"]
    job = service.client.get(location).json()["workspace_job"]
    assert job["kind"] == "delete_data" and answer.json() == {
        "message": f"ok: job {job['id']} (delete_data) empties the workspace"}
    done = finished(service, ws["id"], job["id"])
    assert done["status"] == "finished" and done["stats"]["deleted_files"] == 2
    assert done["stats"]["deleted_bytes"] == 8
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(("body", "field", "name"), [
    ({"kind": "defragment"}, "kind", "invalid_value"),
    ({"kind": "cleanup", "settings": {"older_than": -1}}, "settings.older_than", "out_of_range"),
    ({"kind": "cleanup", "settings": {"when": 1}}, "settings.when", "unknown_field"),
    ({"kind": "clone_data"}, "settings.target_workspace_id", "missing"),
    ({"kind": "verify", "surprise": 1}, "surprise", "unknown_field"),
])
def test_bad_requests_name_the_field(idle, tmp_path, body, field, name) -> None:
    ws = create(idle, f"bad-{field}-{name}", configuration=host(tmp_path))
    answer = idle.client.post(f"/workspaces/{ws['id']}/jobs", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["field"] == field


def test_refusals(idle, tmp_path) -> None:
    bare = create(idle, "no-storage")
    answer = idle.client.post(f"/workspaces/{bare['id']}/jobs")
    assert answer.status_code == 409 and answer.json()["errors"][0]["name"] == "no_configuration"
    assert idle.client.delete(f"/workspaces/{bare['id']}/data").status_code == 409
    ws = create(idle, "not-yours", configuration=host(tmp_path))
    stranger = user(idle, "stranger")
    refused = idle.client.post(f"/workspaces/{ws['id']}/jobs", headers=stranger)
    assert refused.status_code == 403 and refused.json()["errors"][0]["name"] == "not_owner"
    job = idle.client.post(f"/workspaces/{ws['id']}/jobs", json={"kind": "verify"}).json()["workspace_job"]
    assert idle.client.delete(f"/workspaces/{ws['id']}/jobs/{job['id']}", headers=stranger).status_code == 403
    assert idle.anonymous.get(f"/workspaces/{ws['id']}/jobs").status_code == 401
    assert idle.client.get(f"/workspaces/{ws['id']}/jobs/{job['id'] + 1000}").status_code == 404
    assert idle.client.get(f"/workspaces/{bare['id']}/jobs/{job['id']}").status_code == 404  # another's job
    assert idle.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/logs/999999").status_code == 404
    assert idle.client.get(f"/workspaces/{ws['id']}/jobs/{job['id']}/history/999999").status_code == 404
    assert idle.client.post("/workspaces/999999/jobs").status_code == 404
