"""The one retry policy of every backend: bounded attempts, exponential backoff with jitter (tenacity).

What counts as transient is each backend's own table (``is_transient`` of the NFS client, the S3 error table);
how often and how patiently to try again is decided here, once. S3 *requests* are retried by botocore's own
``standard`` retry mode (see :mod:`brokers.backends.s3.client`); this policy covers what botocore cannot: a
response body cut short, and the NFS client's calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

__all__ = ["RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how long apart, a transient failure is tried again.

    Attributes:
        attempts: Tries in all, the first included (at least 1).
        backoff: Delay before the first retry in seconds, doubled each time, plus up to as much again of jitter;
            0 retries at once.
        max_delay: The longest delay between two tries.
    """

    attempts: int = 5
    backoff: float = 0.05
    max_delay: float = 2.0

    def run(self, fn: Callable[[int], T], *, retry_if: Callable[[BaseException], bool],
            before_retry: Callable[[BaseException], None] | None = None) -> T:
        """Call ``fn(attempt)`` (attempts count from 1) until it returns.

        A failure that ``retry_if`` accepts is tried again (``before_retry`` runs first, then the backoff
        pause) while attempts remain; any other failure, or the last one, propagates unchanged, so the caller
        translates it with its own table.
        """
        def sleep_hook(state: tenacity.RetryCallState) -> None:
            if before_retry is not None and state.outcome is not None:
                error = state.outcome.exception()
                if error is not None:
                    before_retry(error)

        wait: tenacity.wait.wait_base = tenacity.wait_none()
        if self.backoff > 0:
            wait = (tenacity.wait_exponential(multiplier=self.backoff, max=self.max_delay)
                    + tenacity.wait_random(0, self.backoff))
        retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(max(self.attempts, 1)), wait=wait,
                                     retry=tenacity.retry_if_exception(retry_if), before_sleep=sleep_hook,
                                     reraise=True)
        for attempt in retrying:
            with attempt:
                return fn(attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity re-raises the last failure")
