"""The one object the service and ``brokers worker`` hold: queue, runner, consumer threads, maintenance, mail."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from brokers.config import AccessPolicy

from ..db import writing
from ..db.models import Job, JobLog, Workspace
from ..security import SecretBox
from ..store import jobs as store
from ..store.users import Actor
from . import ledger
from .mail import Mailer, job_message
from .maintenance import Maintainer, MaintenanceSettings
from .queue import JobConsumer, ThreadConsumer, describe_queue, make_queue, send_task
from .runner import JobRunner, RunnerSettings

__all__ = ["JobSettings", "JobSystem"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSettings:
    """How jobs are carried and run in this process.

    Attributes:
        queue_url: The queue (:mod:`.queue`); None: the SQLite file ``queue.db`` in ``data_dir``.
        data_dir: The service's data folder.
        workers: Jobs this process runs at once (0: it only sends them).
        runner: Lease and heartbeat.
        maintenance: Lease expiry, re-sending, schedules, periodic usage scans.
        smtp_url: Where notification mails go (None: none are sent).
        mail_from: Their ``From`` address.
    """

    queue_url: str | None = None
    data_dir: Path = Path(".")
    workers: int = 2
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    smtp_url: str | None = None
    mail_from: str = "brokers@localhost"


class JobSystem:
    """Sends jobs to the queue and, with workers, runs them.

    Args:
        sessions: The registry's sessions.
        box: Opens stored secrets.
        policy: What the jobs' brokers may reach.
        actor: Whom the service's own jobs belong to.
        settings: See :class:`JobSettings`.
    """

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, policy: AccessPolicy, actor: Actor,
                 settings: JobSettings) -> None:
        self.settings = settings
        self._sessions = sessions
        self._actor = actor
        self._mailer = Mailer(settings.smtp_url, settings.mail_from) if settings.smtp_url else None
        self.runner = JobRunner(sessions, box, policy, settings.runner, on_end=self._ended,
                                send_parts=self.send_parts)
        working = bool(settings.workers)
        self.queue = make_queue(settings.queue_url, settings.data_dir, self.runner if working else None,
                                self.runner.part if working else None)
        self.maintainer = Maintainer(sessions, self.send, actor, settings.maintenance)
        self._consumer: ThreadConsumer | None = None

    def describe(self) -> str:
        """Which queue, for logs (no password)."""
        return describe_queue(self.settings.queue_url, self.settings.data_dir)

    def send(self, ids: Iterable[int]) -> None:
        """Put jobs on the queue; one the queue refuses (it is away) is sent again by the maintenance pass."""
        sent = []
        for job_id in ids:
            try:
                send_task(self.queue, job_id)
            except Exception as exc:
                log.warning("job %d could not be sent to the queue (%s: %s); it will be sent again", job_id,
                            type(exc).__name__, exc)
                continue
            sent.append(job_id)
        ledger.mark_dispatched(self._sessions, sent)

    def send_parts(self, ids: list[int]) -> None:
        """Put the parts of a split usage scan on the queue (one the queue refuses is scanned by its scan)."""
        for part_id in ids:
            try:
                send_task(self.queue, part_id, "scan_part")
            except Exception as exc:
                log.warning("part %d could not be sent to the queue (%s: %s)", part_id, type(exc).__name__, exc)
                return

    def scan(self, ws_ids: Iterable[int]) -> None:
        """Measure these workspaces soon (after a configuration change): a usage scan each, or the one under way."""
        created = []
        for ws_id in ws_ids:
            with writing(self._sessions) as session:
                ws = session.get(Workspace, ws_id)
                if ws is None or ws.configuration is None or ws.trashed is not None:
                    continue
                job, new = store.create(session, self._actor, ws, "usage_scan", origin="refresh", checked=False)
                if new:
                    created.append(job.id)
        self.send(created)

    def start(self) -> None:
        """Start the maintenance thread and, with workers, the consumer threads."""
        self.runner.stopping.clear()
        self.maintainer.start()
        if self.settings.workers and self._consumer is None:
            self._consumer = ThreadConsumer(self.queue, self.settings.workers, self.runner.stopping.set)
            self._consumer.start()

    def stop(self) -> None:
        """Stop: running jobs stop at a safe point and wait for a worker again."""
        self.maintainer.stop()
        if self._consumer is not None:
            self._consumer.stop()
            self._consumer = None
        self.runner.stopping.set()

    def consume(self) -> None:
        """Run the consumer in this thread until SIGINT/SIGTERM (``brokers worker``)."""
        self.maintainer.start()
        consumer = JobConsumer(self.queue, max(self.settings.workers, 1), self.runner.stopping.set, signals=True)
        try:
            consumer.run()
        finally:
            self.maintainer.stop()

    def _ended(self, job: Job, held: ledger.Claim) -> None:
        """After a job's end: scan again a workspace whose configuration changed during its scan; send mail."""
        if job.kind == "usage_scan":
            with self._sessions() as session:
                current = session.scalar(select(Workspace.configuration).where(Workspace.id == job.workspace_id))
            if current is not None and current != held.configuration:
                self.scan([job.workspace_id])
        try:
            self._notify(job)
        except OSError as exc:  # smtplib's errors are OSErrors; their text never holds the password
            log.warning("job %d: the notification mail was not sent: %s: %s", job.id, type(exc).__name__, exc)

    def _notify(self, job: Job) -> None:
        """Mail the workspace's notification addresses about a job that ended, if it asks to be told."""
        if self._mailer is None or job.status == "canceled":
            return
        with self._sessions() as session:
            ws = session.get(Workspace, job.workspace_id)
            if ws is None:
                return
            settings = ws.settings or {}
            to = list(settings.get("notification_emails") or [])
            wanted = job.status == "error" or (job.status == "finished" and settings.get("notify_on_finished"))
            if not to or not wanted:
                return
            lines = [(row.level, row.text) for row in
                     session.scalars(select(JobLog).where(JobLog.job_id == job.id).order_by(JobLog.id))]
            subject, body = job_message(ws.title, job.id, job.kind, job.status, dict(job.stats or {}), lines)
        self._mailer.send(to, subject, body)
