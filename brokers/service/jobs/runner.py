"""Run one job for the queue: claim it, keep its lease alive, run its kind, end it, tell who asked to be told."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from brokers.config import AccessPolicy
from brokers.core.broker import Broker
from brokers.errors import BrokerError
from brokers.registry import get_broker

from ..db.models import Job, Workspace
from ..security import SecretBox
from . import ledger, parts
from .context import JobCanceled, JobContext, JobInterrupted, LeaseLost
from .kinds import KIND_FUNCTIONS, KindFailed

__all__ = ["JobRunner", "RunnerSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerSettings:
    """How a worker runs jobs.

    Attributes:
        lease: Seconds a claim lasts unless renewed (a dead worker's job is taken back after this).
        heartbeat: Seconds between two renewals (also how often a cancel is noticed: at most this late).
        split_scans: Split S3 usage scans into parts on the queue unless a job says otherwise (the workers are
            other processes, so parts run in parallel on them).
    """

    lease: float = 30.0
    heartbeat: float = 0.5
    split_scans: bool = False


def worker_name() -> str:
    """This process's name in job logs: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRunner:
    """Runs the jobs whose ids the queue hands over.

    Args:
        sessions: The registry's sessions.
        box: Opens the stored configurations' secrets.
        policy: What the jobs' brokers may reach.
        settings: Lease and heartbeat.
        on_end: Called with each job that ended and the claim it ran under (mail, a scan of a changed
            configuration).
        send_parts: Puts the parts of a split usage scan on the queue (None: scans are never split).
    """

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, policy: AccessPolicy,
                 settings: RunnerSettings | None = None,
                 on_end: Callable[[Job, ledger.Claim], None] | None = None,
                 send_parts: Callable[[list[int]], None] | None = None) -> None:
        self._sessions = sessions
        self._box = box
        self._policy = policy
        self.settings = settings or RunnerSettings()
        self._on_end = on_end
        self._send_parts = send_parts
        self.stopping = threading.Event()
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def running(self) -> list[int]:
        """The ids of the jobs this process runs now."""
        with self._lock:
            return sorted(self._running)

    def __call__(self, job_id: int) -> None:
        """Run one job, if it is still waiting (a repeated message finds it taken and returns)."""
        lease = uuid.uuid4().hex
        name = f"{worker_name()}/{threading.current_thread().name}"
        held = ledger.claim(self._sessions, job_id, lease, name, self.settings.lease)
        if held is None:
            return
        with self._lock:
            self._running.add(job_id)
        try:
            self._run(held)
        finally:
            with self._lock:
                self._running.discard(job_id)

    def part(self, part_id: int) -> None:
        """Scan one part of a split usage scan, if it is still to do (its scan may have taken it meanwhile)."""
        name = f"{worker_name()}/{threading.current_thread().name}"
        held = parts.claim_part(self._sessions, uuid.uuid4().hex, name, self.settings.lease, part_id=part_id)
        if held is None:
            return
        with self._sessions() as session:
            job = session.get(Job, held.job_id)
            ws = None if job is None else session.get(Workspace, job.workspace_id)
            text = None if ws is None else ws.configuration
        if text is None:
            return  # the scan will fail on its own (no configuration any more)
        try:
            parts.run_part(self._sessions, held, self._broker(text, "the workspace"), self.settings.lease)
        except parts.PartLost:
            log.info("part %d of job %d: taken over by another worker", part_id, held.job_id)
        except Exception as exc:  # the scan that made the part runs it itself
            log.warning("part %d of job %d failed: %s: %s", part_id, held.job_id, type(exc).__name__, exc)
            parts.release_part(self._sessions, held)

    def _broker(self, text: str | None, what: str) -> Broker:
        if text is None:
            raise KindFailed(f"{what} has no storage configuration any more", {})
        return get_broker(self._box.open(json.loads(text)), policy=self._policy)

    def _target(self, held: ledger.Claim) -> Broker | None:
        if held.kind != "clone_data":
            return None
        target_id = held.settings["target_workspace_id"]
        with self._sessions() as session:
            ws = session.get(Workspace, target_id)
            text = None if ws is None or ws.trashed is not None else ws.configuration
        return self._broker(text, f"the target workspace {target_id}")

    def _run(self, held: ledger.Claim) -> None:
        ctx = JobContext(held.job_id, held.settings, split_auto=self.settings.split_scans)
        if self._send_parts is not None:
            send, name = self._send_parts, f"{worker_name()}/{threading.current_thread().name}"
            ctx.split = lambda broker, folders: parts.split_scan(self._sessions, send, ctx, broker, folders,
                                                                 worker=name, seconds=self.settings.lease)
        beat = threading.Thread(target=self._heartbeat, args=(held, ctx), daemon=True,
                                name=f"brokers-job-{held.job_id}-lease")
        beat.start()
        status, stats = "finished", {}
        try:
            source = self._broker(held.configuration, f"workspace {held.workspace_id}")
            stats = KIND_FUNCTIONS[held.kind](ctx, source, self._target(held))
            if held.kind == "usage_scan":
                self._store_usage(held, stats)
        except LeaseLost:
            log.warning("job %d: lease lost to another worker; stopping without writing", held.job_id)
            return
        except JobInterrupted:
            ledger.release(self._sessions, held, ctx.take_lines(),
                           "the worker is shutting down: the job stopped at a safe point and waits for a worker "
                           "again (what it finished stays done; no file is left half-written)")
            return
        except JobCanceled:
            status = "canceled"
            ctx.log("info", "canceled at a safe point: what was done stays done, no file is left half-written")
        except KindFailed as exc:
            status, stats = "error", {**exc.stats, "error": str(exc)}
            ctx.log("error", str(exc))
        except (BrokerError, ValueError, OSError) as exc:
            status, stats = "error", {"error": f"{type(exc).__name__}: {exc}"}
            ctx.log("error", f"failed: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug: say so in the job, keep the worker alive
            log.exception("job %d failed", held.job_id)
            status, stats = "error", {"error": f"internal error: {type(exc).__name__}"}
            ctx.log("error", f"internal error: {type(exc).__name__} (see the worker's log)")
        finally:
            ctx.lost.set()  # stops the heartbeat
            beat.join()
        if status == "error":  # the worker's own log says it too, for whoever watches the worker
            log.warning("job %d (%s of workspace %d) ended in error: %s", held.job_id, held.kind, held.workspace_id,
                        stats.get("error"))
        ended = ledger.end(self._sessions, held, status, stats, ctx.progress(), ctx.take_lines())
        if ended is not None and self._on_end is not None:
            try:
                self._on_end(ended, held)
            except Exception as exc:
                log.warning("job %d: what follows its end failed: %s: %s", held.job_id, type(exc).__name__, exc)

    def _heartbeat(self, held: ledger.Claim, ctx: JobContext) -> None:
        """Renew the lease, write progress and log lines, and notice a cancel, until the job ends."""
        while not ctx.lost.wait(self.settings.heartbeat):
            if self.stopping.is_set():
                ctx.interrupted.set()
            lines = ctx.take_lines()
            try:
                asked = ledger.renew(self._sessions, held.job_id, held.lease, self.settings.lease, ctx.progress(),
                                     lines)
            except Exception as exc:  # the database is away for a moment: try again at the next beat
                ctx.give_back(lines)
                log.warning("job %d: renewing the lease failed: %s", held.job_id, exc)
                continue
            if asked is None:
                ctx.lost.set()
                return
            if asked:
                ctx.canceled.set()

    def _store_usage(self, held: ledger.Claim, stats: dict[str, Any]) -> None:
        """Keep the measurement on the workspace, unless its configuration changed meanwhile."""
        with self._sessions() as session, session.begin():
            session.execute(
                update(Workspace).where(Workspace.id == held.workspace_id,
                                        Workspace.configuration == held.configuration)
                .values(used_size=stats["used_size"], total_size=stats["total_size"],
                        usage_measured=datetime.fromisoformat(stats["measured_at"]))
                .execution_options(synchronize_session=False))

