"""SLOWLOG and LATENCY: what one node measured (resp/cmdstats.py), with
Redis 7's replies."""

from __future__ import annotations

from typing import Any

from makod.kv import errors
from makod.kv.args import int_arg
from makod.kv.errors import CommandError
from makod.kv.table import TABLE, command, container, subcommand
from resp.replies import OK, Map, SimpleString, Verbatim

_ADMIN = "admin loading stale"


def _stats(session: Any) -> Any:
    stats = getattr(session.host, "command_stats", None)
    if stats is None:
        raise CommandError("ERR this node keeps no command statistics")
    return stats


# -- SLOWLOG ---------------------------------------------------------------------------------
def _slowlog_get(session: Any, argv: list[bytes]) -> Any:
    stats = _stats(session)
    count = 10
    if len(argv) == 3:
        count = int_arg(argv[2], errors.SLOWLOG_COUNT)
        if count < -1:
            raise CommandError(errors.SLOWLOG_COUNT)
    entries = list(stats.slowlog) if count == -1 else list(stats.slowlog)[:count]
    return [[eid, ts, usec, args, addr, name] for eid, ts, usec, args, addr, name in entries]


def _slowlog_len(session: Any, argv: list[bytes]) -> Any:
    return len(_stats(session).slowlog)


def _slowlog_reset(session: Any, argv: list[bytes]) -> Any:
    _stats(session).slowlog.clear()
    return OK


def _slowlog_help(session: Any, argv: list[bytes]) -> Any:
    return [SimpleString(line) for line in [
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ]]


container(
    "slowlog",
    scope="server",
    group="server",
    summary="A container for slow log commands.",
    since="2.2.12",
    subcommands=[
        subcommand("slowlog", "get", -2, _slowlog_get, _ADMIN, scope="server", group="server", summary="Returns the slow log's entries.", since="2.2.12", complexity="O(N)"),
        subcommand("slowlog", "len", 2, _slowlog_len, _ADMIN, scope="server", group="server", summary="Returns the number of entries in the slow log.", since="2.2.12"),
        subcommand("slowlog", "reset", 2, _slowlog_reset, _ADMIN, scope="server", group="server", summary="Clears all entries from the slow log.", since="2.2.12", complexity="O(N)"),
        subcommand("slowlog", "help", 2, _slowlog_help, "loading stale", scope="server", group="server", summary="Show helpful text about the different subcommands", since="6.2.0"),
    ],
)


# -- LATENCY ---------------------------------------------------------------------------------
def _latency_latest(session: Any, argv: list[bytes]) -> Any:
    stats = _stats(session)
    out = []
    for event, history in sorted(stats.latency_events.items()):
        if history:
            ts, ms = history[-1]
            out.append([event, ts, ms, stats.latency_max.get(event, ms)])
    return out


def _latency_history(session: Any, argv: list[bytes]) -> Any:
    history = _stats(session).latency_events.get(argv[2].decode("utf-8", "replace"))
    return [[ts, ms] for ts, ms in history] if history else []


def _latency_reset(session: Any, argv: list[bytes]) -> Any:
    stats = _stats(session)
    names = [a.decode("utf-8", "replace") for a in argv[2:]] or list(stats.latency_events)
    removed = 0
    for name in names:
        if stats.latency_events.pop(name, None) is not None:
            removed += 1
        stats.latency_max.pop(name, None)
    return removed


def _latency_histogram(session: Any, argv: list[bytes]) -> Any:
    """Per command: calls, and cumulative counts per power-of-two bucket of
    microseconds (RESP3 maps; RESP2 flattens them)."""
    stats = _stats(session)
    stats.flush()
    if len(argv) > 2:
        names = []
        for raw in argv[2:]:
            spec = TABLE.lookup(raw)
            name = raw.decode("utf-8", "replace").lower()
            if spec is not None and name in stats.histograms and name not in names:
                names.append(name)
    else:
        names = sorted(stats.histograms)
    out = []
    for name in names:
        calls, buckets = stats.histogram_buckets(name)
        out.append((name, Map([("calls", calls), ("histogram_usec", Map(list(buckets.items())))])))
    return Map(out)


def _latency_doctor(session: Any, argv: list[bytes]) -> Any:
    stats = _stats(session)
    if not stats.latency_events:
        if not stats.latency_monitor_threshold_ms:
            text = ("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. "
                    "You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. "
                    "If we weren't in a deep space mission I'd suggest to take a look at "
                    "https://redis.io/topics/latency-monitor.\n")
        else:
            text = "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n"
        return Verbatim(text.encode())
    lines = ["Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?", ""]
    for i, (event, history) in enumerate(sorted(stats.latency_events.items()), 1):
        samples = [ms for _ts, ms in history]
        avg = sum(samples) / len(samples)
        lines.append(f"{i}. {event}: {len(samples)} latency spikes (average {avg:.0f}ms, "
                     f"mean deviation {sum(abs(s - avg) for s in samples) / len(samples):.0f}ms, "
                     f"period {_period(history)} sec). Worst all time event {stats.latency_max.get(event, 0)}ms.")
    lines += ["", "I have a few advices for you:", "",
              "- In makodb a command's time includes replication to a majority and the fsync: "
              "check the disks (fsync latency) and the links between replicas (MAKO STATUS, "
              "makoctl cluster status --wide) before the commands themselves.",
              "- Check your Slow Log to understand what are the commands you are running which are too slow "
              "to execute. Please check https://redis.io/commands/slowlog for more information.", ""]
    return Verbatim("\n".join(lines).encode())


def _period(history: Any) -> int:
    if len(history) < 2:
        return 0
    return int((history[-1][0] - history[0][0]) / (len(history) - 1))


def _latency_help(session: Any, argv: list[bytes]) -> Any:
    return [SimpleString(line) for line in [
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help.",
    ]]


GRAPH_ROWS = 4


def _latency_graph(session: Any, argv: list[bytes]) -> Any:
    """An ASCII graph of an event's samples, oldest left, as Redis draws it:
    a header, a rule, columns as tall as the sample (``#`` on top, ``|``
    below, ``_`` for the lowest), and under each its age, written downwards."""
    stats = _stats(session)
    event = argv[2].decode("utf-8", "replace")
    history = stats.latency_events.get(event)
    if not history:
        raise CommandError(f"ERR No samples available for event '{event}'")
    samples = [ms for _ts, ms in history][-80:]
    times = [ts for ts, _ms in history][-80:]
    high, low = max(samples), min(samples)
    lines = [f"{event} - high {high} ms, low {low} ms (all time high {stats.latency_max.get(event, high)} ms)", "-" * 80]
    levels = [1 if high == low else 1 + round((ms - low) * (GRAPH_ROWS - 1) / (high - low)) for ms in samples]
    for row in range(GRAPH_ROWS, 0, -1):
        cells = []
        for level in levels:
            if level == row:
                cells.append("#" if level > 1 else "_")
            elif level > row:
                cells.append("|")
            else:
                cells.append(" ")
        lines.append(" " + "".join(cells))
    now = int(stats.wall_s())
    labels = [_age(now - ts) for ts in times]
    for i in range(max(len(label) for label in labels)):
        lines.append(" " + "".join(label[i] if i < len(label) else " " for label in labels))
    return Verbatim(("\n".join(lines) + "\n").encode())


def _age(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


container(
    "latency",
    scope="server",
    group="server",
    summary="A container for latency diagnostics commands.",
    since="2.8.13",
    subcommands=[
        subcommand("latency", "latest", 2, _latency_latest, _ADMIN, scope="server", group="server", summary="Returns the latest latency samples for all events.", since="2.8.13"),
        subcommand("latency", "history", 3, _latency_history, _ADMIN, scope="server", group="server", summary="Returns timestamp-latency samples for an event.", since="2.8.13"),
        subcommand("latency", "reset", -2, _latency_reset, _ADMIN, scope="server", group="server", summary="Resets the latency data for one or more events.", since="2.8.13"),
        subcommand("latency", "histogram", -2, _latency_histogram, _ADMIN, scope="server", group="server", summary="Returns the cumulative distribution of latencies of a subset or all commands.", since="7.0.0", complexity="O(N)"),
        subcommand("latency", "graph", 3, _latency_graph, _ADMIN, scope="server", group="server", summary="Returns a latency graph for an event.", since="2.8.13"),
        subcommand("latency", "doctor", 2, _latency_doctor, _ADMIN, scope="server", group="server", summary="Returns a human-readable latency analysis report.", since="2.8.13"),
        subcommand("latency", "help", 2, _latency_help, "loading stale", scope="server", group="server", summary="Returns helpful text about the different subcommands.", since="2.8.13"),
    ],
)


# -- MONITOR and ROLE --------------------------------------------------------------------------
@command("monitor", 1, "admin noscript loading stale", scope="session", group="server", summary="Listens for all requests received by the server in real-time.", since="1.0.0")
def monitor_(session: Any, argv: list[bytes]) -> Any:
    if session.in_multi:
        raise CommandError(errors.NOT_ALLOWED_IN_MULTI)
    session.start_monitor()
    return OK


@command("role", 1, "noscript loading stale fast", scope="server", group="server", summary="Returns the replication role.", since="2.8.12")
def role(session: Any, argv: list[bytes]) -> Any:
    """A shard's leader answers as a master with its followers and how far
    each has acknowledged the log; a follower as a replica of its leader
    (offsets are log slots)."""
    return session.host.role_reply()
