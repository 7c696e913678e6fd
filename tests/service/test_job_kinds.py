"""What each job kind does, run through the management API on real stores (host, moto's S3 server, NFS-Ganesha).

The NFS tests are at the end of the module and marked ``nfs`` (only one NFS-Ganesha runs on a machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import brokers
from brokers.core.streams import TEMP_PREFIX
from brokers.service.jobs import kinds
from brokers.service.jobs.context import JobContext
from tests.fixtures.sqlite_only import database_url, shared_service  # noqa: F401 - SQLite only: storage tests
from tests.service.job_helpers import (
    Storage,
    contents,
    host_config,
    logs,
    run,
    storage_factory,
    target_is_clean,
    user,
    workspace,
    write_files,
)

BIG = 9 * 1024 * 1024 + 7
"""Larger than one copy chunk and than the S3 multipart threshold (8 MiB)."""
FILES = {"in/a.csv": b"id,value\n1,alpha\n", "in/deep/b.bin": os.urandom(3000), "out/result.txt": b"done\n",
         "top.txt": b"at the root", "in/big.bin": os.urandom(BIG)}
PER_FOLDER = {"/in": (3, 17 + 3000 + BIG), "/out": (1, 5), "/": (1, 11)}


@pytest.fixture
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Storage]:
    """Return ``make(kind)``: a fresh empty workspace storage (``host``, ``s3``, ``nfs``)."""
    return storage_factory(request, tmp_path)


# ------------------------------------------------------------------------------------------------------ usage_scan
@pytest.mark.parametrize("kind", ["host", "s3"])
def test_usage_scan_measures_each_top_level_folder(service, make_storage, kind) -> None:
    storage = make_storage(kind)
    ws = workspace(service, storage.config)  # its first scan measures it empty
    assert service.client.get(f"/workspaces/{ws}").json()["workspace"]["disk_usage"] == 0
    write_files(storage.broker, FILES)
    job = run(service, ws, "usage_scan")
    assert job["status"] == "finished", logs(service, ws, job["id"])
    stats = job["stats"]
    assert stats["data_volumes"] == {folder: size for folder, (_, size) in PER_FOLDER.items()}
    assert stats["files_count"] == {folder: count for folder, (count, _) in PER_FOLDER.items()}
    total = sum(len(data) for data in FILES.values())
    assert (stats["used_size"], stats["file_count"]) == (total, len(FILES))
    assert set(stats["statuses_history"]) == {"waiting", "running", "finished"}
    assert job["progress"] == {"files_total": 5, "files_done": 5, "bytes_total": total, "bytes_done": total}
    assert service.client.get(f"/workspaces/{ws}").json()["workspace"]["disk_usage"] == total
    assert service.client.get(f"/v6/workspaces/{ws}/").json()["used_size"] == total
    assert service.client.get(f"/v5/workspaces/{ws}/").json()["used_size"] == total


# ----------------------------------------------------------------------------------------------------- delete_data
@pytest.mark.parametrize("kind", ["host", "s3"])
def test_delete_data_empties_the_workspace_and_counts_what_it_removed(service, make_storage, kind) -> None:
    storage = make_storage(kind)
    write_files(storage.broker, FILES)
    ws = workspace(service, storage.config)
    job = run(service, ws, "delete_data")
    assert job["status"] == "finished", logs(service, ws, job["id"])
    assert job["stats"]["deleted_files"] == len(FILES)
    assert job["stats"]["deleted_bytes"] == sum(len(d) for d in FILES.values())
    assert list(storage.broker.list()) == []
    assert ("info", f"deleted {len(FILES)} files, {job['stats']['deleted_bytes']} bytes") in logs(service, ws,
                                                                                              job["id"])
    if storage.root is not None:
        assert storage.root.is_dir()  # the workspace's folder itself stays


# ------------------------------------------------------------------------------------------------------ clone_data
@pytest.mark.parametrize(("source_kind", "target_kind"), [("host", "s3"), ("s3", "host"), ("s3", "s3"),
                                                          ("host", "host")])
def test_clone_copies_every_file_and_a_second_run_copies_nothing(service, make_storage, request, source_kind,
                                                                 target_kind) -> None:
    source, target = make_storage(source_kind), make_storage(target_kind)
    write_files(source.broker, FILES)
    source_ws, target_ws = workspace(service, source.config), workspace(service, target.config)
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert job["status"] == "finished", logs(service, source_ws, job["id"])
    total = sum(len(d) for d in FILES.values())
    assert job["stats"] | {"statuses_history": None} == {
        "copied_files": len(FILES), "copied_bytes": total, "skipped_files": 0, "deleted_source_files": 0,
        "statuses_history": None}
    assert job["settings"] == {"target_workspace_id": target_ws, "delete_data_after_success": False}
    assert job["progress"] == {"files_total": 5, "files_done": 5, "bytes_total": total, "bytes_done": total}
    assert contents(target.broker) == FILES
    assert contents(source.broker) == FILES
    target_is_clean(target, request)

    again = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert again["status"] == "finished"
    assert (again["stats"]["copied_files"], again["stats"]["skipped_files"]) == (0, len(FILES))
    assert contents(target.broker) == FILES


def test_a_resumed_clone_keeps_a_copy_made_in_the_second_of_the_source_change(service, make_storage) -> None:
    """S3 dates an object in whole seconds, the host in nanoseconds: a copy written in the same second as the
    source's last change is not older than it (a second run copied files again now and then)."""
    source, target = make_storage("host"), make_storage("s3")
    write_files(source.broker, FILES)
    source_ws, target_ws = workspace(service, source.config), workspace(service, target.config)
    assert run(service, source_ws, "clone_data", {"target_workspace_id": target_ws})["status"] == "finished"
    assert source.root is not None
    for path in FILES:  # the source's change fell in the copy's second, after the whole second S3 shows
        copied = target.broker.info(path).modified.timestamp()
        assert copied == int(copied)
        os.utime(source.root / path, (copied + 0.5, copied + 0.5))
    again = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert (again["stats"]["copied_files"], again["stats"]["skipped_files"]) == (0, len(FILES))


@pytest.mark.parametrize(("source_kind", "target_kind"), [("host", "s3"), ("s3", "host"), ("host", "host")])
def test_clone_replaces_a_target_file_that_differs(service, make_storage, source_kind, target_kind) -> None:
    source, target = make_storage(source_kind), make_storage(target_kind)
    target.broker.write_bytes("out/result.txt", b"DONE\n")  # the same size, but older than the source's file
    time.sleep(1.1)  # S3's LastModified has whole seconds
    write_files(source.broker, FILES)
    target.broker.write_bytes("in/a.csv", b"shorter")  # another size (newer than the source's)
    source_ws, target_ws = workspace(service, source.config), workspace(service, target.config)
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert job["status"] == "finished", logs(service, source_ws, job["id"])
    assert contents(target.broker) == FILES
    assert job["stats"]["copied_files"] == len(FILES)


@pytest.mark.parametrize(("source_kind", "target_kind"), [("host", "s3"), ("s3", "host")])
def test_a_move_deletes_the_source_once_every_copy_is_verified(service, make_storage, source_kind,
                                                               target_kind) -> None:
    source, target = make_storage(source_kind), make_storage(target_kind)
    write_files(source.broker, FILES)
    source_ws, target_ws = workspace(service, source.config), workspace(service, target.config)
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws, "delete_data_after_success": True})
    assert job["status"] == "finished", logs(service, source_ws, job["id"])
    assert job["stats"]["deleted_source_files"] == len(FILES)
    assert list(source.broker.list()) == []
    assert contents(target.broker) == FILES


def test_a_move_takes_the_source_workspace_setting(service, make_storage) -> None:
    source, target = make_storage("host"), make_storage("host")
    write_files(source.broker, FILES)
    source_ws = workspace(service, source.config, settings={"delete_data_after_success": True})
    target_ws = workspace(service, target.config)
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert job["settings"]["delete_data_after_success"] is True
    assert (list(source.broker.list()), contents(target.broker)) == ([], FILES)


def test_a_move_compares_the_bytes_of_a_file_it_keeps_at_the_target(service, make_storage) -> None:
    """A same-size file at the target, newer than the source's, would be kept by a clone: a move reads both."""
    source, target = make_storage("host"), make_storage("host")
    write_files(source.broker, FILES)
    target.broker.write_bytes("in/a.csv", b"id,value\n1,OMEGA\n")  # same size, other bytes, written later
    source_ws, target_ws = workspace(service, source.config), workspace(service, target.config)
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws, "delete_data_after_success": True})
    assert job["status"] == "finished", logs(service, source_ws, job["id"])
    assert contents(target.broker) == FILES  # the source's bytes, not the target's
    assert list(source.broker.list()) == []
    assert (job["stats"]["copied_files"], job["stats"]["skipped_files"]) == (len(FILES), 0)


def test_a_move_keeps_a_source_file_that_changed_after_its_copy(tmp_path) -> None:
    """Someone writes to the source while the move runs: the newer file is not deleted with the old one's copy."""
    source, target = (brokers.get_broker(host_config(tmp_path / name)) for name in ("source", "target"))
    for name in ("source", "target"):
        (tmp_path / name).mkdir()
    write_files(source, FILES)

    class WriterMeanwhile(JobContext):
        def advance(self, files: int = 0, size: int = 0) -> None:
            super().advance(files, size)
            if files and (self.progress() or {}).get("files_done") == len(FILES):
                source.write_bytes("out/result.txt", b"newer\n")  # after its copy, before the deletes

    ctx = WriterMeanwhile(1, {"delete_data_after_success": True})
    stats = kinds.clone_data(ctx, source, target)
    assert (stats["deleted_source_files"], stats["changed_source_files"]) == (len(FILES) - 1, 1)
    assert contents(source) == {"out/result.txt": b"newer\n"}
    assert contents(target) == FILES
    assert ("warning", "out/result.txt: changed at the source during the move: kept there (move it again)") \
        in ctx.take_lines()


@pytest.mark.parametrize("where", ["same", "inside", "around"])
@pytest.mark.parametrize("move", [False, True])
def test_clone_refuses_a_target_on_the_same_storage(service, make_storage, tmp_path, where, move) -> None:
    """Two workspaces on one folder (a workspace cloned by the API shares its configuration): nothing is touched."""
    source = make_storage("host")
    write_files(source.broker, FILES)
    assert source.root is not None
    target_root = {"same": source.root, "inside": source.root / "in" / "deep", "around": source.root.parent}[where]
    source_ws, target_ws = workspace(service, source.config), workspace(service, host_config(target_root))
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws,
                                                 "delete_data_after_success": move})
    assert job["status"] == "error"
    assert "overlaps" in job["stats"]["error"]
    assert any(level == "error" and "overlaps" in text for level, text in logs(service, source_ws, job["id"]))
    assert contents(source.broker) == FILES


def test_clone_refuses_an_s3_target_that_overlaps_the_source(service, s3_config, make_storage) -> None:
    source = make_storage("s3")
    write_files(source.broker, FILES)
    whole_bucket = {**s3_config, "broker": {k: v for k, v in s3_config["broker"].items() if k != "prefix"}}
    source_ws, target_ws = workspace(service, source.config), workspace(service, whole_bucket)
    job = run(service, source_ws, "clone_data", {"target_workspace_id": target_ws, "delete_data_after_success": True})
    assert job["status"] == "error" and "overlaps" in job["stats"]["error"]
    assert contents(source.broker) == FILES


# ---------------------------------------------------------------------------------------------------------- verify
@pytest.mark.parametrize("kind", ["host", "s3"])
def test_verify_reads_every_file_and_checks_the_store_checksums(service, make_storage, kind) -> None:
    storage = make_storage(kind)
    write_files(storage.broker, FILES)
    ws = workspace(service, storage.config)
    job = run(service, ws, "verify")
    assert job["status"] == "finished", logs(service, ws, job["id"])
    # S3: every single-part object has an MD5 ETag (the 9 MiB one is multipart); host keeps no checksums.
    checked = len(FILES) - 1 if kind == "s3" else 0
    assert job["stats"] | {"statuses_history": None} == {
        "files_read": len(FILES), "files_unreadable": 0, "checksums_checked": checked, "checksum_mismatches": 0,
        "statuses_history": None}
    assert ("info", f"read {len(FILES)} files; {checked} checked against the store's checksum") in logs(
        service, ws, job["id"])


def test_verify_reports_bytes_that_come_back_corrupted(service, make_storage, s3_server) -> None:
    """moto's answers to the GETs of one object get a byte flipped on the way: verify ends in error and names it."""
    storage = make_storage("s3")
    write_files(storage.broker, FILES)
    ws = workspace(service, storage.config)
    key = f"/{storage.config['broker']['bucket_name']}/{storage.config['broker']['prefix']}/out/result.txt"
    s3_server.inject(lambda r: r.method == "GET" and r.path == key, corrupt=True)
    job = run(service, ws, "verify")
    assert job["status"] == "error"
    assert job["stats"] | {"statuses_history": None} == {
        "files_read": len(FILES), "files_unreadable": 0, "checksums_checked": len(FILES) - 1,
        "checksum_mismatches": 1, "error": "0 unreadable files, 1 checksum mismatches", "statuses_history": None}
    errors = [text for level, text in logs(service, ws, job["id"]) if level == "error"]
    assert errors == ["out/result.txt: checksum mismatch", "0 unreadable files, 1 checksum mismatches"]


# --------------------------------------------------------------------------------------------------------- cleanup
def test_cleanup_removes_old_leftovers_and_keeps_fresh_ones(service, make_storage) -> None:
    storage = make_storage("host")
    assert storage.root is not None
    write_files(storage.broker, FILES)
    old, fresh = storage.root / "in" / f"{TEMP_PREFIX}crashed", storage.root / "out" / f"{TEMP_PREFIX}writing"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    os.utime(old, (time.time() - 7200,) * 2)
    ws = workspace(service, storage.config)
    job = run(service, ws, "cleanup")
    assert job["status"] == "finished", logs(service, ws, job["id"])
    assert job["stats"]["removed_leftovers"] == 1
    assert (old.exists(), fresh.exists()) == (False, True)
    assert contents(storage.broker) == FILES
    assert ("info", "removed 1 leftovers of crashed writes older than 3600 s") in logs(service, ws, job["id"])


def test_cleanup_aborts_incomplete_multipart_uploads(service, make_storage, s3_client) -> None:
    storage = make_storage("s3")
    write_files(storage.broker, FILES)
    bucket, prefix = storage.config["broker"]["bucket_name"], storage.config["broker"]["prefix"]
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key=f"{prefix}/in/crashed.bin")
    s3_client.upload_part(Bucket=bucket, Key=f"{prefix}/in/crashed.bin", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"x" * 1024)
    ws = workspace(service, storage.config)
    kept = run(service, ws, "cleanup")  # the default: older than an hour
    assert (kept["status"], kept["stats"]["removed_leftovers"]) == ("finished", 0)
    assert storage.pending_uploads(s3_client) == [f"{prefix}/in/crashed.bin"]
    removed = run(service, ws, "cleanup", {"older_than": 0})
    assert (removed["status"], removed["stats"]["removed_leftovers"]) == ("finished", 1)
    assert storage.pending_uploads(s3_client) == []
    assert contents(storage.broker) == FILES


# -------------------------------------------------------------------------------------------------------- refusals
def test_a_workspace_without_storage_runs_no_job(service) -> None:
    ws = workspace(service)
    for kind in ("usage_scan", "verify", "delete_data"):
        response = service.client.post(f"/workspaces/{ws}/jobs", json={"kind": kind})
        assert response.status_code == 409, response.text
        assert response.json()["errors"][0]["name"] == "no_configuration"
    assert service.client.get(f"/workspaces/{ws}/jobs").json()["workspace_jobs"] == []


def test_clone_targets_are_checked(service, make_storage) -> None:
    source = make_storage("host")
    ws = workspace(service, source.config)
    bare = workspace(service)

    def refused(settings: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        response = service.client.post(f"/workspaces/{ws}/jobs", json={"kind": "clone_data", "settings": settings})
        return response.status_code, response.json()["errors"]

    status, errors = refused({"target_workspace_id": ws})
    assert (status, errors[0]["field"], errors[0]["name"]) == (400, "settings.target_workspace_id", "same_workspace")
    status, errors = refused({"target_workspace_id": 987654})
    assert (status, errors[0]["field"], errors[0]["name"]) == (404, "settings.target_workspace_id", "not_found")
    status, errors = refused({"target_workspace_id": bare})
    assert (status, errors[0]["field"], errors[0]["name"]) == (409, "settings.target_workspace_id",
                                                               "no_configuration")
    status, errors = refused({})
    assert (status, errors[0]["field"]) == (400, "settings.target_workspace_id")
    status, errors = refused({"target_workspace_id": bare, "overwrite": True})
    assert (status, errors[0]["field"]) == (400, "settings.overwrite")
    trashed = workspace(service, make_storage("host").config)
    assert service.client.delete(f"/workspaces/{trashed}").status_code == 200
    status, errors = refused({"target_workspace_id": trashed})
    assert (status, errors[0]["field"]) == (404, "settings.target_workspace_id")
    assert [j["kind"] for j in service.client.get(f"/workspaces/{ws}/jobs").json()["workspace_jobs"]] == [
        "usage_scan"]


def test_only_owners_and_admins_run_jobs(service, make_storage) -> None:
    _, alice = user(service, "alice")
    _, bob = user(service, "bob")
    _, admin = user(service, "root", admin=True)
    mine = workspace(service, make_storage("host").config, headers=alice)
    theirs = workspace(service, make_storage("host").config, headers=bob)
    response = service.client.post(f"/workspaces/{mine}/jobs", json={"kind": "verify"}, headers=bob)
    assert (response.status_code, response.json()["errors"][0]["name"]) == (403, "not_owner")
    # Writing into someone else's workspace is refused too, naming the target.
    response = service.client.post(f"/workspaces/{mine}/jobs", headers=alice,
                                   json={"kind": "clone_data", "settings": {"target_workspace_id": theirs}})
    assert (response.status_code, response.json()["errors"][0]["field"]) == (403, "settings.target_workspace_id")
    assert service.client.post(f"/workspaces/{mine}/jobs", json={"kind": "verify"}, headers=alice).status_code == 201
    response = service.client.post(f"/workspaces/{mine}/jobs", headers=admin,
                                   json={"kind": "clone_data", "settings": {"target_workspace_id": theirs}})
    assert response.status_code == 201, response.text


# ------------------------------------------------------------------------------------------------ NFS (run last)
@pytest.fixture
def nfs_service(start_service) -> Any:
    return start_service(nfs_server_allow=("127.0.0.1",))


@pytest.mark.nfs
def test_nfs_usage_scan_measures_each_top_level_folder(nfs_service, make_storage) -> None:
    storage = make_storage("nfs")
    ws = workspace(nfs_service, storage.config)
    write_files(storage.broker, FILES)
    job = run(nfs_service, ws, "usage_scan")
    assert job["status"] == "finished", logs(nfs_service, ws, job["id"])
    assert job["stats"]["data_volumes"] == {folder: size for folder, (_, size) in PER_FOLDER.items()}
    assert job["stats"]["files_count"] == {folder: count for folder, (count, _) in PER_FOLDER.items()}
    total = sum(len(d) for d in FILES.values())
    assert nfs_service.client.get(f"/workspaces/{ws}").json()["workspace"]["disk_usage"] == total


@pytest.mark.nfs
@pytest.mark.parametrize("nfs_is_source", [False, True])
def test_nfs_clone_both_ways(nfs_service, make_storage, request, nfs_is_source) -> None:
    nfs, host = make_storage("nfs"), make_storage("host")
    source, target = (nfs, host) if nfs_is_source else (host, nfs)
    write_files(source.broker, FILES)
    source_ws, target_ws = workspace(nfs_service, source.config), workspace(nfs_service, target.config)
    job = run(nfs_service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert job["status"] == "finished", logs(nfs_service, source_ws, job["id"])
    assert job["stats"]["copied_files"] == len(FILES)
    assert contents(target.broker) == FILES
    target_is_clean(target, request)
    again = run(nfs_service, source_ws, "clone_data", {"target_workspace_id": target_ws})
    assert (again["stats"]["copied_files"], again["stats"]["skipped_files"]) == (0, len(FILES))
    job = run(nfs_service, source_ws, "verify")
    assert (job["status"], job["stats"]["files_read"]) == ("finished", len(FILES))
