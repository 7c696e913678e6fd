"""What a running job reports through: live progress, log lines, and the safe points where it may stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brokers.core.broker import Broker

__all__ = ["JobCanceled", "JobContext", "JobInterrupted", "JobStopped", "LeaseLost"]


class JobStopped(Exception):
    """The job stopped at a safe point before its end (never half-way through a file)."""


class JobCanceled(JobStopped):
    """Somebody canceled the job (``DELETE .../jobs/{id}``)."""


class JobInterrupted(JobStopped):
    """The worker is shutting down: the job goes back to the queue."""


class LeaseLost(JobStopped):
    """Another worker owns the job now (this one missed renewing its lease): stop without a word."""


@dataclass
class JobContext:
    """A running job's link to its record, shared by the job's thread and its heartbeat.

    Attributes:
        job_id: The job's id.
        settings: The job's settings.
        canceled: Set by the heartbeat when the record asks the job to stop.
        interrupted: Set when the worker shuts down.
        lost: Set when the lease went to another worker.
        split: See below.
    """

    job_id: int
    settings: dict[str, Any]
    split: Callable[[Broker, list[str]], dict[str, tuple[int, int]]] | None = None
    """Scans folders as parts on the queue (a usage scan of many folders); None where parts cannot be sent."""
    split_auto: bool = False
    """Split S3 usage scans without being asked (the workers are other processes: Redis)."""
    canceled: threading.Event = field(default_factory=threading.Event)
    interrupted: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress: dict[str, int] = field(default_factory=dict)
    _lines: list[tuple[str, str]] = field(default_factory=list)

    def check(self) -> None:
        """A safe point: raise if the job must stop here.

        Raises:
            LeaseLost, JobInterrupted, JobCanceled: In that order of precedence.
        """
        if self.lost.is_set():
            raise LeaseLost
        if self.interrupted.is_set():
            raise JobInterrupted
        if self.canceled.is_set():
            raise JobCanceled

    def total(self, files: int, size: int) -> None:
        """Say how much there is to do."""
        with self._lock:
            self._progress.update(files_total=files, bytes_total=size)
            self._progress.setdefault("files_done", 0)
            self._progress.setdefault("bytes_done", 0)

    def advance(self, files: int = 0, size: int = 0) -> None:
        """Count work done."""
        with self._lock:
            self._progress["files_done"] = self._progress.get("files_done", 0) + files
            self._progress["bytes_done"] = self._progress.get("bytes_done", 0) + size

    def progress(self) -> dict[str, int] | None:
        """The progress so far (None before the job said how much there is)."""
        with self._lock:
            return dict(self._progress) if self._progress else None

    def log(self, level: str, text: str) -> None:
        """Queue a log line; the heartbeat writes it (and the job's end writes what is left)."""
        with self._lock:
            self._lines.append((level, text))

    def give_back(self, lines: list[tuple[str, str]]) -> None:
        """Put back lines taken but not written (the database was away): they go first next time."""
        with self._lock:
            self._lines[:0] = lines

    def take_lines(self) -> list[tuple[str, str]]:
        """Return the log lines not yet written, and forget them."""
        with self._lock:
            lines, self._lines = self._lines, []
            return lines
