"""One node's command statistics, as Redis keeps them: INFO commandstats,
errorstats and latencystats, SLOWLOG, and the LATENCY monitor.

A command's time here is what its client waits for, from the moment the
session dispatched it until its reply may go out: for a write that includes
replication to a majority and the fsync, for a command forwarded to another
node the round trip. (Redis measures only the execution on its one thread;
here the execution is the small part.) Bounded: one entry and one histogram
per command name the table knows, SLOWLOG and each latency event's history
capped by their settings.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Callable

from hdrh.histogram import HdrHistogram

# Histograms from 1 us to 100 s with 2 significant digits (Redis: 1 ns to 1 s, 2 digits).
HIST_LOWEST_US = 1
HIST_HIGHEST_US = 100_000_000
HIST_DIGITS = 2
SLOWLOG_ARGS = 32  # Redis: SLOWLOG_ENTRY_MAX_ARGC
SLOWLOG_ARG_BYTES = 128  # Redis: SLOWLOG_ENTRY_MAX_STRING
LATENCY_HISTORY = 160  # Redis: LATENCY_TS_LEN
PENDING_TIMES = 1024  # times a command keeps before they enter its histogram


class CommandStats:
    """``wall_s``: the Unix time in seconds (SLOWLOG and LATENCY stamp their
    entries with it); ``mono_ns``: a monotonic clock in nanoseconds, which
    sessions time commands with. Both come from the host."""

    def __init__(self, wall_s: Callable[[], float], mono_ns: Callable[[], int]) -> None:
        self.wall_s = wall_s
        self.mono_ns = mono_ns
        # name -> [calls, usec, rejected_calls, failed_calls, times not yet in its histogram]
        self.commands: dict[str, list] = {}
        self.histograms: dict[str, HdrHistogram] = {}
        self.errors: dict[str, int] = {}
        self.total_error_replies = 0
        self.slowlog_log_slower_than_us = 10_000
        self.slowlog_max_len = 128
        self.slowlog: deque[list] = deque()
        self.slowlog_next_id = 0
        self.latency_tracking = True
        self.latency_percentiles = [50.0, 99.0, 99.9]
        self.latency_monitor_threshold_ms = 0
        # event -> deque[(unix seconds, ms)]; event -> max ms ever
        self.latency_events: dict[str, deque[tuple[int, int]]] = {}
        self.latency_max: dict[str, int] = {}

    # -- recording ---------------------------------------------------------------------------
    def _entry(self, name: str) -> list:
        entry = self.commands.get(name)
        if entry is None:
            entry = self.commands[name] = [0, 0, 0, 0, []]
        return entry

    def record(self, name: str, usec: int, failed: bool, argv: list[bytes] | None = None,
               client: Any = None) -> None:
        """A command ran (``failed``: it answered an error)."""
        entry = self.commands.get(name)
        if entry is None:
            entry = self._entry(name)
        entry[0] += 1
        entry[1] += usec
        if failed:
            entry[3] += 1
        if self.latency_tracking:
            # Times wait in a list and enter the histogram in batches, counted
            # alike first (few distinct values): a histogram's record costs
            # more than the append, on every command.
            pending = entry[4]
            pending.append(usec)
            if len(pending) >= PENDING_TIMES:
                self._flush(name, entry)
        if argv is not None and 0 <= self.slowlog_log_slower_than_us <= usec:
            self._slowlog_add(usec, argv, client)
        threshold = self.latency_monitor_threshold_ms
        if threshold and usec >= threshold * 1000:
            self._latency_event("command", usec // 1000)

    def _flush(self, name: str, entry: list) -> None:
        pending = entry[4]
        if not pending:
            return
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_DIGITS)
        for usec, n in Counter(pending).items():
            hist.record_value(min(max(usec, HIST_LOWEST_US), HIST_HIGHEST_US), n)
        pending.clear()

    def flush(self) -> None:
        """Every waiting time into its histogram (before the histograms are read)."""
        for name, entry in self.commands.items():
            self._flush(name, entry)

    def record_queued(self, name: str, failed: bool) -> None:
        """A command EXEC ran from its queue: counted, its time is EXEC's."""
        entry = self._entry(name)
        entry[0] += 1
        if failed:
            entry[3] += 1

    def rejected(self, name: str) -> None:
        """A known command refused before it ran (arity, ACL, MULTI rules...)."""
        self._entry(name)[2] += 1

    def error_reply(self, text: str) -> None:
        """An error went to a client: counted by its prefix (ERR, WRONGTYPE...)."""
        self.total_error_replies += 1
        prefix = text.split(" ", 1)[0] if text else "ERR"
        if prefix in self.errors or len(self.errors) < 128:  # Redis caps distinct prefixes at 128
            self.errors[prefix] = self.errors.get(prefix, 0) + 1

    def _slowlog_add(self, usec: int, argv: list[bytes], client: Any) -> None:
        args = []
        for i, arg in enumerate(argv):
            if i == SLOWLOG_ARGS - 1 and len(argv) > SLOWLOG_ARGS:
                args.append(b"... (%d more arguments)" % (len(argv) - SLOWLOG_ARGS + 1))
                break
            if len(arg) > SLOWLOG_ARG_BYTES:
                arg = arg[:SLOWLOG_ARG_BYTES] + b"... (%d more bytes)" % (len(arg) - SLOWLOG_ARG_BYTES)
            args.append(arg)
        addr = getattr(client, "addr", "") or ""
        name = getattr(client, "name", None) or b""
        self.slowlog.appendleft([self.slowlog_next_id, int(self.wall_s()), usec, args, addr.encode(), name])
        self.slowlog_next_id += 1
        while len(self.slowlog) > max(0, self.slowlog_max_len):
            self.slowlog.pop()

    def _latency_event(self, event: str, ms: int) -> None:
        history = self.latency_events.get(event)
        if history is None:
            history = self.latency_events[event] = deque(maxlen=LATENCY_HISTORY)
        now = int(self.wall_s())
        if history and history[-1][0] == now:  # one sample per second: its max
            if ms > history[-1][1]:
                history[-1] = (now, ms)
        else:
            history.append((now, ms))
        self.latency_max[event] = max(self.latency_max.get(event, 0), ms)

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.commands.clear()
        self.histograms.clear()
        self.errors.clear()
        self.total_error_replies = 0

    # -- INFO sections ---------------------------------------------------------------------------
    def info_commandstats(self) -> list[tuple[str, str]]:
        out = []
        for name in sorted(self.commands):
            calls, usec, rejected, failed, _pending = self.commands[name]
            per_call = usec / calls if calls else 0.0
            out.append((f"cmdstat_{name}", f"calls={calls},usec={usec},usec_per_call={per_call:.2f},"
                                           f"rejected_calls={rejected},failed_calls={failed}"))
        return out

    def info_errorstats(self) -> list[tuple[str, str]]:
        return [(f"errorstat_{prefix}", f"count={n}") for prefix, n in sorted(self.errors.items())]

    def info_latencystats(self) -> list[tuple[str, str]]:
        self.flush()
        out = []
        for name in sorted(self.histograms):
            hist = self.histograms[name]
            parts = [f"p{p:g}={hist.get_value_at_percentile(p):.3f}" for p in self.latency_percentiles]
            out.append((f"latency_percentiles_usec_{name}", ",".join(parts)))
        return out

    def histogram_buckets(self, name: str) -> tuple[int, dict[int, int]]:
        """LATENCY HISTOGRAM: calls and cumulative counts per power-of-two
        bucket of microseconds (Redis's layout, from 1 us up)."""
        entry = self.commands.get(name)
        if entry is not None:
            self._flush(name, entry)
        hist = self.histograms.get(name)
        calls = entry[0] if entry is not None else 0
        if hist is None:
            return calls, {}
        buckets: dict[int, int] = {}
        for item in hist.get_recorded_iterator():
            value = max(1, hist.get_highest_equivalent_value(item.value_iterated_to))
            bucket = 1 << max(0, (value - 1).bit_length())
            buckets[bucket] = buckets.get(bucket, 0) + item.count_added_in_this_iter_step
        cumulative, total = {}, 0
        for bucket in sorted(buckets):
            total += buckets[bucket]
            cumulative[bucket] = total
        return calls, cumulative
