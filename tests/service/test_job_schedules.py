"""Schedules and the periodic usage scans: which slots are due, one job per slot whoever looks (two maintainers at
once included), what never fires, scans that are not retried before their interval, and what pruning keeps.

The maintenance passes run on a real registry (SQLite and PostgreSQL) with explicit ``now`` values; no service
runs beside them (its own maintainer would look at the wall clock).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from brokers.service.db import make_engine, make_sessions, upgrade, writing
from brokers.service.db.models import Job, JobHistory, JobLog, Workspace, utcnow
from brokers.service.jobs import ledger
from brokers.service.jobs.maintenance import SCHEDULE_KINDS, Maintainer, MaintenanceSettings, due_slots
from brokers.service.security import SecretBox
from brokers.service.settings import normalize_database_url
from brokers.service.store import jobs as job_store
from brokers.service.store import workspaces as ws_store
from brokers.service.store.users import Actor, ensure_service_user
from tests.service.job_helpers import host_config

UTC = timezone.utc
_titles = itertools.count(1)


def at(hour: int, minute: int, second: int = 0, microsecond: int = 0) -> datetime:
    return datetime(2031, 3, 4, hour, minute, second, microsecond, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------- due_slots
def test_the_last_slot_is_due_within_the_grace() -> None:
    assert due_slots([{"minute": "*/5"}], at(10, 7), grace=300) == [(at(10, 5), "usage_scan")]
    assert due_slots([{"minute": "*/5"}], at(10, 7), grace=120) == [(at(10, 5), "usage_scan")]
    assert due_slots([{"minute": "*/5"}], at(10, 7), grace=119) == []


def test_a_slot_is_due_at_its_own_moment() -> None:
    assert due_slots([{"minute": "*/5"}], at(10, 5), grace=60) == [(at(10, 5), "usage_scan")]
    assert due_slots([{"minute": "0", "hour": "10"}], at(10, 0), grace=0) == [(at(10, 0), "usage_scan")]
    assert due_slots([{"minute": "*/5"}], at(10, 4, 59, 999999), grace=60) == []


def test_each_schedule_names_its_kind_and_a_bad_one_is_skipped() -> None:
    schedules = [{"minute": "*/5", "kind": "verify"}, {"minute": "0", "hour": "10", "kind": "cleanup"},
                 {"minute": "61"}, {"minute": "7", "hour": "3"}]
    assert due_slots(schedules, at(10, 1), grace=300) == [(at(10, 0), "verify"), (at(10, 0), "cleanup")]


# ------------------------------------------------------------------------------------------------- the registry
@dataclass
class Registry:
    """A migrated registry with no service on it, and what the maintainers sent to the queue."""

    sessions: Any
    actor: Actor
    folder: Path
    sent: list[int] = field(default_factory=list)

    def workspace(self, settings: dict[str, Any] | None = None, *, configuration: bool = True) -> int:
        config = host_config(self.folder) if configuration else None
        ws = ws_store.create(self.sessions, SecretBox(()), self.actor,
                             {"title": f"scheduled {next(_titles)}", "configuration": config,
                              "settings": settings or {}})
        return ws.id

    def maintainer(self, **settings: Any) -> Maintainer:
        return Maintainer(self.sessions, self.sent.extend, self.actor, MaintenanceSettings(**settings))

    def jobs(self, *where: Any) -> list[Job]:
        with self.sessions() as session:
            return list(session.scalars(select(Job).where(*where).order_by(Job.id)))

    def set(self, ws_id: int, **values: Any) -> None:
        with self.sessions() as session, session.begin():
            session.execute(update(Workspace).where(Workspace.id == ws_id).values(**values))

    def end(self, job_id: int, status: str) -> None:
        """Run a job's way through the ledger: claimed by a worker, then ended with ``status``."""
        held = ledger.claim(self.sessions, job_id, uuid.uuid4().hex, "test:1", 30)
        assert held is not None
        assert ledger.end(self.sessions, held, status, {}, None, [("info", f"ended {status} by the test")])

    def request(self, ws_id: int, kind: str) -> int:
        """A job somebody asked for."""
        with writing(self.sessions) as session:
            ws = session.get(Workspace, ws_id)
            job, _ = job_store.create(session, self.actor, ws, kind, checked=False)
            return job.id


@pytest.fixture
def registry(database_url: str, tmp_path: Path) -> Iterator[Registry]:
    engine = make_engine(normalize_database_url(database_url))
    upgrade(engine)
    sessions = make_sessions(engine)
    with sessions() as session, session.begin():
        actor = ensure_service_user(session)
    yield Registry(sessions, actor, tmp_path)
    engine.dispose()


# ---------------------------------------------------------------------------------------------------- schedules
def test_a_slot_fires_once_whoever_looks(registry) -> None:
    ws = registry.workspace({"schedules": [{"minute": "*/5", "kind": "verify"}]})
    first = registry.maintainer(schedules=True)
    made = first.fire_schedules(at(10, 7))
    assert len(made) == 1
    assert first.fire_schedules(at(10, 7, 30)) == []
    assert registry.maintainer(schedules=True).fire_schedules(at(10, 8)) == []  # another process
    [job] = registry.jobs(Job.workspace_id == ws)
    assert (job.id, job.kind, job.origin, job.status, job.scheduled_for) == (made[0], "verify", "schedule",
                                                                            "waiting", at(10, 5))
    assert len(first.fire_schedules(at(10, 10, 1))) == 1  # the next slot
    assert [j.scheduled_for for j in registry.jobs(Job.workspace_id == ws)] == [at(10, 5), at(10, 10)]


def test_two_maintainers_at_once_make_one_job_per_slot(registry) -> None:
    workspaces = [registry.workspace({"schedules": [{"minute": "*/5"}]}) for _ in range(12)]
    maintainers = [registry.maintainer(schedules=True) for _ in range(2)]
    barrier = threading.Barrier(len(maintainers))
    made: list[list[int]] = [[] for _ in maintainers]
    errors: list[BaseException] = []

    def fire(number: int) -> None:
        try:
            barrier.wait()
            made[number] = maintainers[number].fire_schedules(at(10, 5, 3))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(len(maintainers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(made[0] + made[1]) == sorted({*made[0], *made[1]})  # no job was reported twice
    jobs = registry.jobs(Job.origin == "schedule")
    assert sorted(j.workspace_id for j in jobs) == workspaces  # one each
    assert sorted(j.id for j in jobs) == sorted(made[0] + made[1])
    assert {(j.kind, j.scheduled_for) for j in jobs} == {("usage_scan", at(10, 5))}


def test_schedules_of_two_kinds_in_one_slot_both_fire(registry) -> None:
    ws = registry.workspace({"schedules": [{"minute": "*/5"}, {"minute": "0", "hour": "3", "kind": "cleanup"}]})
    made = registry.maintainer(schedules=True).fire_schedules(at(3, 1))
    assert len(made) == 2
    assert sorted((j.kind, j.scheduled_for) for j in registry.jobs(Job.workspace_id == ws)) == [
        ("cleanup", at(3, 0)), ("usage_scan", at(3, 0))]
    assert registry.maintainer(schedules=True).fire_schedules(at(3, 2)) == []


def test_trashed_disabled_and_storageless_workspaces_never_fire(registry) -> None:
    schedules = {"schedules": [{"minute": "*/5"}]}
    live = registry.workspace(schedules)
    trashed, disabled = registry.workspace(schedules), registry.workspace(schedules)
    registry.workspace(schedules, configuration=False)  # no storage: nothing to work on
    registry.set(trashed, trashed=utcnow())
    registry.set(disabled, is_active=False)
    assert len(registry.maintainer(schedules=True).fire_schedules(at(10, 5))) == 1
    assert [j.workspace_id for j in registry.jobs()] == [live]


def test_a_schedule_kind_outside_the_schedule_kinds_never_fires(registry) -> None:
    """Stored settings are checked by the API; an old row may hold anything, and it is skipped."""
    assert "clone_data" not in SCHEDULE_KINDS
    registry.workspace({"schedules": [{"minute": "*/5", "kind": "clone_data"}, {"minute": "*/5", "kind": "nope"}]})
    assert registry.maintainer(schedules=True).fire_schedules(at(10, 5)) == []
    assert registry.jobs() == []


def test_the_schedule_kind_is_checked_and_stored_only_when_given(service) -> None:
    def settings_of(schedules: list[dict[str, Any]]) -> Any:
        return service.client.post("/workspaces?load_full_structure=1", json={
            "name": f"with schedules {next(_titles)}", "settings": {"schedules": schedules}})

    plain = settings_of([{"minute": "*/5"}])
    assert plain.status_code == 201, plain.text
    assert plain.json()["workspace"]["settings"]["schedules"] == [
        {"minute": "*/5", "hour": "*", "day": "*", "month": "*", "day_of_week": "*"}]
    with service.app.state.service.sessions() as session:
        stored = session.get(Workspace, plain.json()["workspace"]["id"]).settings
    assert stored == {"schedules": [{"minute": "*/5", "hour": "*", "day": "*", "month": "*", "day_of_week": "*"}],
                      "notification_emails": [], "delete_data_after_success": False}
    verify = settings_of([{"minute": "0", "hour": "2", "kind": "verify"}])
    assert verify.status_code == 201, verify.text
    assert verify.json()["workspace"]["settings"]["schedules"][0]["kind"] == "verify"
    refused = settings_of([{"minute": "*/5"}, {"minute": "0", "kind": "clone_data"}])
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == ["settings.schedules.1.kind"]


# ------------------------------------------------------------------------------------- periodic usage scans
def test_stale_workspaces_get_one_scan_each(registry) -> None:
    stale = [registry.workspace() for _ in range(3)]
    fresh = registry.workspace()
    registry.workspace(configuration=False)  # no storage: never measured
    now = utcnow()
    registry.set(fresh, usage_measured=now - timedelta(seconds=10))
    maintainer = registry.maintainer(usage_interval=60)
    made = maintainer.refresh_usage(now)
    assert len(made) == 3
    assert maintainer.refresh_usage(now) == []  # waiting: nothing new
    assert registry.maintainer(usage_interval=60).refresh_usage(now + timedelta(seconds=1)) == []
    jobs = registry.jobs()
    assert sorted(j.workspace_id for j in jobs) == stale
    assert {(j.kind, j.origin) for j in jobs} == {("usage_scan", "refresh")}


def test_a_failed_scan_is_not_retried_before_the_interval(registry) -> None:
    ws = registry.workspace()
    maintainer = registry.maintainer(usage_interval=60)
    now = utcnow()
    [first] = maintainer.refresh_usage(now)
    registry.end(first, "error")  # the store did not answer: the workspace stays unmeasured
    assert maintainer.refresh_usage(now + timedelta(seconds=30)) == []
    [second] = maintainer.refresh_usage(now + timedelta(seconds=61))
    assert [j.id for j in registry.jobs(Job.workspace_id == ws)] == [first, second]


def test_a_scan_asked_for_counts_as_the_periodic_one(registry) -> None:
    ws = registry.workspace()
    asked = registry.request(ws, "usage_scan")
    assert registry.maintainer(usage_interval=60).refresh_usage(utcnow()) == []  # one is under way
    registry.end(asked, "finished")
    assert registry.maintainer(usage_interval=60).refresh_usage(utcnow() + timedelta(seconds=5)) == []


def test_pruning_drops_old_periodic_scans_and_keeps_the_rest(registry) -> None:
    ws = registry.workspace({"schedules": [{"minute": "*/5"}]})
    maintainer = registry.maintainer(usage_interval=60, keep_refreshes=3600, schedules=True)
    now = utcnow()
    [old_refresh] = maintainer.refresh_usage(now)
    registry.end(old_refresh, "finished")
    asked = registry.request(ws, "verify")
    registry.end(asked, "error")
    [by_schedule] = maintainer.fire_schedules(now.replace(minute=now.minute // 5 * 5, second=1))
    registry.end(by_schedule, "finished")
    [unended] = maintainer.refresh_usage(now + timedelta(seconds=61))  # a periodic scan still waiting
    maintainer.prune_refreshes(now + timedelta(seconds=3600 + 120))
    assert sorted(j.id for j in registry.jobs()) == sorted([asked, by_schedule, unended])
    with registry.sessions() as session:  # the pruned scan's history and log lines went with it
        assert session.scalar(select(func.count()).select_from(JobLog).where(JobLog.job_id == old_refresh)) == 0
        assert session.scalar(select(func.count()).select_from(JobHistory)
                              .where(JobHistory.job_id == old_refresh)) == 0
