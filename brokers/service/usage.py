"""Background measurement of workspace usage, cached in the database with its timestamp.

A scheduler thread starts one measurement per due workspace (never measured, measured more than ``interval``
seconds ago, or asked for with :meth:`UsageRefresher.refresh`), at most ``workers`` at a time. A measurement that
runs longer than ``timeout`` seconds gives its slot back, so a hung store cannot starve the others; it keeps its
thread until the store answers (a thread cannot be killed), and its workspace is not measured again meanwhile.
Results go to ``used_size``/``total_size``/``usage_measured``; a request only ever reads those columns.
Brokers are built under the service's :class:`~brokers.config.AccessPolicy`: a workspace whose endpoint the
deployment does not allow is never contacted (its measurement fails with that reason, logged), and one without
keys is measured anonymously unless the deployment lends its own credentials.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from brokers.config import AccessPolicy
from brokers.registry import get_broker

from .db.models import Workspace, utcnow
from .security import SecretBox

__all__ = ["UsageRefresher"]

log = logging.getLogger(__name__)


@dataclass
class _Job:
    thread: threading.Thread
    started: float
    holds_slot: bool = True
    again: bool = False


@dataclass
class _State:
    running: dict[int, _Job] = field(default_factory=dict)
    wanted: set[int] = field(default_factory=set)
    retry_after: dict[int, float] = field(default_factory=dict)
    free: int = 0


class UsageRefresher:
    """Keeps the usage columns of active workspaces fresh, in the background.

    Args:
        sessions: Session factory of the service database.
        box: Decrypts secrets of stored configurations.
        interval: Seconds after which a measurement is stale (and after which a failed one is retried).
        timeout: Seconds after which a running measurement gives its worker slot back.
        workers: Measurements running at once; 0 disables measuring (the size fields stay as stored).
        tick: Seconds between two scheduler passes.
        policy: What a measurement may reach (allowed S3 endpoints, ambient credentials).
    """

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, *, interval: float = 300.0,
                 timeout: float = 60.0, workers: int = 4, tick: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, policy: AccessPolicy | None = None) -> None:
        self._sessions = sessions
        self._box = box
        self._policy = policy if policy is not None else AccessPolicy(endpoint_allow=(), ambient_credentials=False)
        self.interval = interval
        self.timeout = timeout
        self._tick = tick
        self._clock = clock
        self._lock = threading.Lock()
        self.enabled = workers > 0
        self._state = _State(free=workers)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scheduler thread (idempotent; nothing when measuring is disabled)."""
        if self.enabled and (self._thread is None or not self._thread.is_alive()):
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="brokers-usage", daemon=True)
            self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        """Stop scheduling; measurements in progress finish on their own (daemon threads)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait)

    def refresh(self, ids: Iterable[int]) -> None:
        """Measure these workspaces as soon as a slot is free (again after the current run, if one is running)."""
        if not self.enabled:
            return
        with self._lock:
            for ws_id in ids:
                self._state.wanted.add(ws_id)
                self._state.retry_after.pop(ws_id, None)
                job = self._state.running.get(ws_id)
                if job is not None:
                    job.again = True
        self._wake.set()

    def busy(self) -> list[int]:
        """Return the ids being measured now."""
        with self._lock:
            return sorted(self._state.running)

    # ------------------------------------------------------------------ scheduler
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._release_overdue()
                self._schedule()
            except Exception:
                log.warning("usage scheduler pass failed", exc_info=True)
            self._wake.wait(self._tick)
            self._wake.clear()

    def _release_overdue(self) -> None:
        now = self._clock()
        with self._lock:
            for ws_id, job in self._state.running.items():
                if job.holds_slot and now - job.started > self.timeout:
                    job.holds_slot = False
                    self._state.free += 1
                    log.warning("measuring workspace %d takes longer than %.0f s; its worker slot is released "
                                "and the result will be stored when the store answers", ws_id, self.timeout)

    def _schedule(self) -> None:
        with self._lock:
            free = self._state.free
            busy = set(self._state.running)
            wanted = set(self._state.wanted)
            now = self._clock()
            waiting = {i for i, t in self._state.retry_after.items() if t > now}
        if free <= 0:
            return
        stale_before = utcnow() - timedelta(seconds=self.interval)
        query = (select(Workspace.id, Workspace.configuration)
                 .where(Workspace.configuration.is_not(None), Workspace.trashed.is_(None),
                        or_(Workspace.id.in_(wanted) if wanted else false(),
                            Workspace.is_active.is_(True) & or_(Workspace.usage_measured.is_(None),
                                                                Workspace.usage_measured < stale_before)))
                 .order_by(Workspace.usage_measured.is_not(None), Workspace.usage_measured, Workspace.id)
                 .limit(free + len(busy) + len(waiting) + len(wanted)))
        with self._sessions() as session:
            rows = session.execute(query).all()
        with self._lock:
            for ws_id, text in rows:
                if self._state.free <= 0:
                    break
                if ws_id in busy or (ws_id in waiting and ws_id not in wanted):
                    continue
                self._state.wanted.discard(ws_id)
                thread = threading.Thread(target=self._measure, args=(ws_id, text),
                                          name=f"brokers-usage-{ws_id}", daemon=True)
                self._state.running[ws_id] = _Job(thread, self._clock())
                self._state.free -= 1
                thread.start()
            for ws_id in wanted - {r[0] for r in rows}:
                self._state.wanted.discard(ws_id)  # deleted meanwhile

    def _measure(self, ws_id: int, text: str | None) -> None:
        ok = False
        try:
            if text is None:
                return  # the workspace lost its configuration meanwhile: nothing to measure
            config = self._box.open(json.loads(text))
            usage = get_broker(config, policy=self._policy).usage()
            with self._sessions() as session, session.begin():
                session.execute(
                    update(Workspace)
                    .where(Workspace.id == ws_id, Workspace.configuration == text)  # not changed meanwhile
                    .values(used_size=usage.used_size, total_size=usage.total_size,
                            usage_measured=usage.measured_at))
            ok = True
        except Exception as exc:
            if not self._stop.is_set():  # after stop(), the service (and maybe its database) is gone
                log.warning("measuring workspace %d failed: %s: %s", ws_id, type(exc).__name__, exc)
        finally:
            with self._lock:
                job = self._state.running.pop(ws_id)
                if job.holds_slot:
                    self._state.free += 1
                if job.again:
                    self._state.wanted.add(ws_id)
                elif not ok:
                    self._state.retry_after[ws_id] = self._clock() + self.interval
            self._wake.set()
