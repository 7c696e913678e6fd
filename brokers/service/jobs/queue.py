"""The task queue that carries job ids: Huey, on a SQLite file in the data folder or on Redis.

- no URL (the embedded default): ``SqliteHuey`` on ``<data folder>/queue.db``, consumed by threads of the
  service itself; ``sqlite:///PATH`` names another file (SQLAlchemy's form: ``sqlite:////abs/path``);
- ``redis://HOST:PORT/N`` (``rediss://``, ``unix://``): ``RedisHuey``, consumed by ``brokers worker`` processes
  on any number of machines (and by the service's own threads, unless ``--job-workers 0``);
- ``memory://``: in this process only (tests).

Huey keeps no results here: the job's row is its record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.engine import make_url

from ..settings import check_queue_url, hide_password

__all__ = ["JobConsumer", "ThreadConsumer", "describe_queue", "make_queue", "send_task"]

log = logging.getLogger(__name__)

_NAME = "brokers-jobs"
_TASK = "run_job"
_PART = "scan_part"


def describe_queue(url: str | None, data_dir: Path) -> str:
    """Say which queue a URL names, without its password (for logs)."""
    return f"SQLite file {data_dir / 'queue.db'}" if not url else hide_password(url)


def make_queue(url: str | None, data_dir: Path, run: Callable[[int], None] | None = None,
               run_part: Callable[[int], None] | None = None) -> Huey:
    """Build the Huey instance a URL names, with the two tasks registered: a job, a part of a usage scan.

    Args:
        url: See the module's documentation (None: the embedded SQLite file).
        data_dir: The service's data folder (for the embedded queue).
        run: What runs a job id in this process; None if this process only sends.
        run_part: What scans a part of a split usage scan (by its id).
    """
    url = check_queue_url(url)
    huey: Huey
    if url is None or url.startswith("sqlite://"):
        filename = data_dir / "queue.db" if url is None else Path(make_url(url).database or "queue.db")
        filename.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(_NAME, filename=str(filename), results=False, utc=True, timeout=30)
    elif url.startswith("memory://"):
        huey = MemoryHuey(_NAME, results=False, utc=True)
    else:
        huey = RedisHuey(_NAME, url=url, results=False, utc=True, blocking=True, read_timeout=1)
    for name, function in ((_TASK, run), (_PART, run_part)):
        huey.task(name=name, retries=0)(_task(name, function))
    return huey


def _task(name: str, function: Callable[[int], None] | None) -> Callable[[int], None]:
    def task(item_id: int) -> None:
        if function is None:
            raise RuntimeError("this process only sends jobs")
        function(item_id)

    task.__name__ = name
    return task


def send_task(huey: Huey, job_id: int, task: str = _TASK) -> None:
    """Put one job id (or, with ``task="scan_part"``, a part id) on the queue."""
    task_class: Any = huey._registry.string_to_task(f"{__name__}.{task}")
    huey.enqueue(task_class(args=(job_id,)))


class JobConsumer(Consumer):  # type: ignore[misc]
    """Huey's consumer on threads, which first tells running jobs to stop at a safe point when it stops.

    Args:
        huey: The queue.
        workers: Jobs run at once.
        on_stop: Called first when the consumer stops (running jobs go back to the queue).
        signals: Handle SIGINT/SIGTERM (``brokers worker``, in its main thread); the service's consumer runs beside
            uvicorn, which handles them.
    """

    def __init__(self, huey: Huey, workers: int, on_stop: Callable[[], None], *, signals: bool = False) -> None:
        super().__init__(huey, workers=workers, periodic=False, initial_delay=0.02, backoff=1.5, max_delay=0.1,
                         worker_type="thread", check_worker_health=signals, shutdown_timeout=30)
        self._on_stop = on_stop
        self._signals = signals

    def stop(self, graceful: bool = False) -> None:
        """Tell running jobs to stop, then wait for the worker threads (at most ``shutdown_timeout``)."""
        self._on_stop()
        super().stop(graceful=True)

    def _set_signal_handlers(self) -> None:
        if self._signals:
            super()._set_signal_handlers()


class ThreadConsumer:
    """Threads of this process that take tasks off the queue and run them (the service's own workers).

    Huey's :class:`~huey.consumer.Consumer` also runs a scheduler (delayed and periodic tasks, which jobs do not
    use) that sleeps a second between passes, so stopping it takes up to a second; these threads stop at once.
    An idle thread polls again after 20 ms, backing off to 100 ms (a Redis queue blocks in the dequeue instead).

    Args:
        huey: The queue.
        workers: Threads.
        on_stop: Called first when they stop (running jobs go back to the queue).
    """

    def __init__(self, huey: Huey, workers: int, on_stop: Callable[[], None]) -> None:
        self._huey = huey
        self._on_stop = on_stop
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"brokers-job-worker-{n + 1}", daemon=True)
                         for n in range(workers)]

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def stop(self, wait: float = 30.0) -> None:
        """Tell running jobs to stop at a safe point, then wait for the threads (at most ``wait`` seconds)."""
        self._on_stop()
        self._stop.set()
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))

    def _loop(self) -> None:
        delay = 0.02
        while not self._stop.is_set():
            try:
                task = self._huey.dequeue()
            except Exception as exc:  # the queue is away for a moment (Redis restarting): try again
                log.warning("the job queue could not be read: %s: %s", type(exc).__name__, exc)
                task = None
                delay = 1.0
            if task is None:
                self._stop.wait(delay)
                delay = min(delay * 1.5, 0.1)
                continue
            delay = 0.02
            self._huey.execute(task)
