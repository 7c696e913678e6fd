"""What keeps the record and the queue in step, run every few seconds by each process that holds the jobs.

Every pass is safe to run in several processes at once (conditional updates, unique indexes):

- jobs whose worker stopped renewing its lease wait again (or end in ``error``), and are sent again;
- waiting jobs whose message was sent long ago (a queue that lost it: Redis restarted without persistence) or
  never (the queue was away) are sent again; a second message for a job is harmless;
- in the service only: workspace schedules (``settings.schedules``, cron fields) start their job once per slot,
  and workspaces not measured for ``usage_interval`` seconds get a usage scan (the periodic measurement, spread
  over the workers like any job).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from ..db import writing
from ..db.models import Job, Workspace, utcnow
from ..store import jobs as store
from ..store.users import Actor
from . import ledger

__all__ = ["SCHEDULE_KINDS", "Maintainer", "MaintenanceSettings", "due_slots"]

log = logging.getLogger(__name__)

SCHEDULE_KINDS = ("usage_scan", "delete_data", "cleanup", "verify")
"""The kinds a schedule may start (those that need no settings)."""
_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


@dataclass(frozen=True)
class MaintenanceSettings:
    """How often and what the maintenance pass does.

    Attributes:
        tick: Seconds between two passes.
        resend_after: A waiting job's message older than this is sent again.
        max_attempts: Runs a job gets when its workers keep dying.
        usage_interval: Seconds after which a workspace is measured again; 0: never (periodic scans off).
        schedules: Fire workspace schedules (the service does; workers do not).
        grace: A schedule slot missed by less than this (seconds; the service was down) still fires.
        batch: At most this many periodic usage scans are created per pass.
        keep_refreshes: Seconds an ended periodic usage scan is kept (its result stays on the workspace); the
            jobs people asked for and the scheduled ones are kept.
    """

    tick: float = 2.0
    resend_after: float = 60.0
    max_attempts: int = 3
    usage_interval: float = 0.0
    schedules: bool = False
    grace: float = 300.0
    batch: int = 500
    keep_refreshes: float = 86400.0


def due_slots(schedules: list[dict[str, str]], now: datetime, grace: float) -> list[tuple[datetime, str]]:
    """The slots (and kinds) of these schedules that fell within the last ``grace`` seconds, ``now`` included."""
    slots = []
    # croniter's get_prev is strictly before its start: start at the next minute, so a slot at ``now`` is due.
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for schedule in schedules:
        expression = " ".join(str(schedule.get(name, "*")) for name in _FIELDS)
        try:
            slot = croniter(expression, start).get_prev(datetime)
        except (ValueError, KeyError):
            continue  # checked when stored; an old row may hold anything
        if (now - slot).total_seconds() <= grace:
            slots.append((slot, str(schedule.get("kind") or "usage_scan")))
    return slots


class Maintainer:
    """Runs the maintenance pass on a thread.

    Args:
        sessions: The registry's sessions.
        send: Puts job ids on the queue.
        actor: Whom the service's own jobs (schedules, periodic scans) belong to.
        settings: What to do and how often.
    """

    def __init__(self, sessions: sessionmaker[Session], send: Callable[[list[int]], None], actor: Actor,
                 settings: MaintenanceSettings) -> None:
        self._sessions = sessions
        self._send = send
        self._actor = actor
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_minute: datetime | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="brokers-jobs-maintenance", daemon=True)
            self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the database is away for a moment: next pass
                log.warning("job maintenance pass failed: %s: %s", type(exc).__name__, exc)
            self._stop.wait(self.settings.tick)

    def run_once(self, now: datetime | None = None) -> list[int]:
        """One pass; returns the ids it sent to the queue."""
        now = now or utcnow()
        settings = self.settings
        ids = ledger.expire_leases(self._sessions, settings.max_attempts, now)
        if settings.schedules:
            minute = now.replace(second=0, microsecond=0)
            if minute != self._last_minute:
                self._last_minute = minute
                ids += self.fire_schedules(now)
        if settings.usage_interval > 0:
            ids += self.refresh_usage(now)
            self.prune_refreshes(now)
        ids += ledger.undelivered(self._sessions, settings.resend_after)
        if ids:
            self._send(sorted(set(ids)))
        return ids

    def fire_schedules(self, now: datetime) -> list[int]:
        """Create the jobs of the schedule slots that fell due (once each, whoever else looks)."""
        with self._sessions() as session:
            rows = session.execute(select(Workspace.id, Workspace.settings).where(
                Workspace.trashed.is_(None), Workspace.is_active.is_(True),
                Workspace.configuration.is_not(None))).all()
        created = []
        for ws_id, ws_settings in rows:
            schedules = (ws_settings or {}).get("schedules") or []
            for slot, kind in due_slots(schedules, now, self.settings.grace):
                if kind not in SCHEDULE_KINDS:
                    continue
                with writing(self._sessions) as session:
                    ws = session.get(Workspace, ws_id)
                    if ws is None or ws.trashed is not None:
                        break
                    job, new = store.create(session, self._actor, ws, kind, origin="schedule", scheduled_for=slot,
                                            checked=False)
                    if new:
                        created.append(job.id)
        return created

    def prune_refreshes(self, now: datetime) -> None:
        """Delete the periodic usage scans that ended more than ``keep_refreshes`` seconds ago."""
        cutoff = now - timedelta(seconds=self.settings.keep_refreshes)
        with self._sessions() as session, session.begin():
            session.execute(delete(Job).where(Job.origin == "refresh", Job.ended < cutoff)
                            .execution_options(synchronize_session=False))

    def refresh_usage(self, now: datetime) -> list[int]:
        """Create usage scans of the workspaces not measured (nor tried) for ``usage_interval`` seconds."""
        stale = now - timedelta(seconds=self.settings.usage_interval)
        tried = exists().where(Job.workspace_id == Workspace.id, Job.kind == "usage_scan", Job.created >= stale)
        query = (select(Workspace.id)
                 .where(Workspace.trashed.is_(None), Workspace.is_active.is_(True),
                        Workspace.configuration.is_not(None),
                        or_(Workspace.usage_measured.is_(None), Workspace.usage_measured < stale), ~tried)
                 .order_by(Workspace.usage_measured.is_not(None), Workspace.usage_measured, Workspace.id)
                 .limit(self.settings.batch))
        with self._sessions() as session:
            due = list(session.scalars(query))
        created = []
        for ws_id in due:
            with writing(self._sessions) as session:
                ws = session.get(Workspace, ws_id)
                if ws is None or ws.configuration is None:
                    continue
                job, new = store.create(session, self._actor, ws, "usage_scan", origin="refresh", checked=False)
                if new:
                    created.append(job.id)
        return created
