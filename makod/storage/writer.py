"""A thread that does the replica's durable writes, in order, off the event loop.

LMDB releases the GIL while it commits and syncs, so the event loop keeps
parsing and executing the next batch while this thread waits for the disk:
group commit and execution overlap. Jobs run strictly in submission order;
each one's completion is reported back on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import queue
import threading
import time
from typing import Callable

import lmdb

log = logging.getLogger("makod.writer")

_STOP = object()


def disk_error_text(exc: BaseException) -> str:
    """The strerror a client sees in MISCONF ("No space left on device", ...)."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("mdb_") and ": " in text else text or os.strerror(errno.EIO)


RETRY_MIN_S = 0.05
RETRY_MAX_S = 1.0


class StorageWriter:
    """``on_error(text)`` hears of a write that failed for a reason the disk may
    get over (full, I/O error): the job is retried in place, later jobs wait
    behind it, nothing is reordered or lost; ``on_error(None)`` once it passed.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_error: Callable[[str | None], None] | None = None
    ) -> None:
        self.loop = loop
        self.on_error = on_error
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self.jobs_done = 0
        self.job_seconds = 0.0  # time spent inside jobs (the disk)
        self.roundtrip_seconds = 0.0  # submit to completion seen by the loop
        self.thread = threading.Thread(target=self._run, name="makod-writer", daemon=True)
        self.thread.start()

    def submit(self, job: Callable[[], None], done: Callable[[], None]) -> None:
        self.pending += 1
        self.jobs.put((job, done, time.perf_counter()))

    def _run(self) -> None:
        while True:
            item = self.jobs.get()
            if item is _STOP:
                return
            job, done, submitted = item
            started = time.perf_counter()
            self._run_until_done(job)
            self.job_seconds += time.perf_counter() - started
            self.loop.call_soon_threadsafe(self._finished, done, submitted)

    def _run_until_done(self, job: Callable[[], None]) -> None:
        delay, failing = RETRY_MIN_S, False
        while True:
            try:
                job()
            except (lmdb.Error, OSError) as exc:  # the disk: wait for it and try again
                if not failing:
                    failing = True
                    log.error("durable write failed (%s); retrying until the disk accepts it", exc)
                    if self.on_error is not None:
                        self.loop.call_soon_threadsafe(self.on_error, disk_error_text(exc))
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception:  # a bug, not the disk: continuing could lose acknowledged data
                log.critical("durable write failed; stopping the process", exc_info=True)
                os._exit(70)
            if failing:
                log.warning("durable writes succeed again")
                if self.on_error is not None:
                    self.loop.call_soon_threadsafe(self.on_error, None)
            return

    def _finished(self, done: Callable[[], None], submitted: float) -> None:
        self.pending -= 1
        self.jobs_done += 1
        self.roundtrip_seconds += time.perf_counter() - submitted
        done()

    def stop(self) -> None:
        self.jobs.put(_STOP)
        self.thread.join(timeout=30)
