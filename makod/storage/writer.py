"""A thread that does the replica's durable writes, in order, off the event loop.

LMDB releases the GIL while it commits and syncs, so the event loop keeps
parsing and executing the next batch while this thread waits for the disk:
group commit and execution overlap. Jobs run strictly in submission order;
each one's completion is reported back on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from typing import Callable

log = logging.getLogger("makod.writer")

_STOP = object()


class StorageWriter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
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
            try:
                job()
            except Exception:  # a failed durable write: continuing could lose acknowledged data
                log.critical("durable write failed; stopping the process", exc_info=True)
                os._exit(70)
            self.job_seconds += time.perf_counter() - started
            self.loop.call_soon_threadsafe(self._finished, done, submitted)

    def _finished(self, done: Callable[[], None], submitted: float) -> None:
        self.pending -= 1
        self.jobs_done += 1
        self.roundtrip_seconds += time.perf_counter() - submitted
        done()

    def stop(self) -> None:
        self.jobs.put(_STOP)
        self.thread.join(timeout=30)
