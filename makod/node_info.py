"""INFO sections and CONFIG GET/SET for one node.

INFO follows Redis's layout (``# Section`` headers, ``field:value`` lines
ending in CRLF, a blank line between sections), with the fields clients and
tools read (REDIS_COMPAT.md, "INFO"), plus a ``# Mako`` section with the
replication state makoctl shows.
"""

from __future__ import annotations

import os
import platform
import time
from typing import TYPE_CHECKING, Any, Callable

from makod import __version__
from makod import config_live
from makod.kv import errors, glob, notify
from resp.commands.connection import REDIS_COMPAT_VERSION
from makod.kv.errors import CommandError

if TYPE_CHECKING:
    from makod.server import Node

# Section headers as Redis writes them where capitalize() would not.
SECTION_TITLES = {"cpu": "CPU"}
DEFAULT_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "errorstats", "cluster",
                    "keyspace"]
ALL_SECTIONS = DEFAULT_SECTIONS + ["commandstats", "latencystats", "mako", "luigi"]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n:.2f}T"


class NodeInfo:
    def __init__(self, node: "Node") -> None:
        self.node = node
        self.run_id = os.urandom(20).hex()
        self.total_connections = 0
        self.rejected_connections = 0
        self.limit_disconnections = {"query": 0, "output": 0, "timeout": 0}
        self.closed_commands_processed = 0  # by connections since closed
        self._params = self._build_params()

    def reset(self) -> None:
        self.total_connections = 0
        self.rejected_connections = 0
        # CONFIG RESETSTAT: counting starts again from zero for everyone.
        self.closed_commands_processed = 0
        for s in self.node.sessions():
            s.commands_processed = 0
        self.node.command_stats.reset()
        self.node.core.ks.reset_lookup_stats()

    # -- INFO ---------------------------------------------------------------------------
    def render(self, sections: list[str]) -> str:
        if not sections or sections == ["default"]:
            wanted = DEFAULT_SECTIONS
        elif "all" in sections or "everything" in sections:
            wanted = ALL_SECTIONS
        else:
            wanted = [s for s in ALL_SECTIONS if s in sections]
        parts = []
        for name in wanted:
            fields = getattr(self, f"_section_{name}")()
            body = "".join(f"{k}:{v}\r\n" for k, v in fields)
            parts.append(f"# {SECTION_TITLES.get(name, name.capitalize())}\r\n{body}")
        return "\r\n".join(parts)

    def _section_server(self) -> list[tuple[str, Any]]:
        node = self.node
        uptime = int(time.monotonic() - node.started_mono)
        uname = platform.uname()
        return [
            ("redis_version", REDIS_COMPAT_VERSION),
            ("makodb_version", __version__),
            ("redis_mode", "standalone"),
            ("os", f"{uname.system} {uname.release} {uname.machine}"),
            ("arch_bits", 64 if platform.architecture()[0] == "64bit" else 32),
            ("multiplexing_api", "epoll"),
            ("process_id", os.getpid()),
            ("run_id", self.run_id),
            ("tcp_port", node.me.resp_port),
            ("server_time_usec", node.time_us()),
            ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400),
            ("executable", "makod"),
            ("config_file", os.path.abspath(node.config_path) if node.config_path else ""),
        ]

    def _section_clients(self) -> list[tuple[str, Any]]:
        node = self.node
        return [
            ("connected_clients", len(node.clients)),
            ("maxclients", node.maxclients),
            ("blocked_clients", 0),
            ("tracking_clients", len(node.tracking.clients)),
        ]

    def _section_memory(self) -> list[tuple[str, Any]]:
        rss = _rss_bytes()
        return [
            ("used_memory", rss),
            ("used_memory_human", _human(rss)),
            ("used_memory_rss", rss),
            ("used_memory_rss_human", _human(rss)),
            ("maxmemory", 0),
            ("maxmemory_human", "0B"),
            ("maxmemory_policy", "noeviction"),
        ]

    def _section_persistence(self) -> list[tuple[str, Any]]:
        node = self.node
        used = node.store.stats()["used_bytes"]
        return [
            ("loading", 0),
            ("rdb_changes_since_last_save", node.core.tracker.pending),
            ("rdb_bgsave_in_progress", 0),
            ("aof_enabled", 1),
            ("aof_rewrite_in_progress", 0),
            ("storage_engine", "lmdb"),
            ("lmdb_used_bytes", used),
            ("checkpoints", node.checkpoints),
            ("checkpoint_applied_index", node.core.applied_slot),
            ("log_first_index", node.core.paxos.first_slot),
            ("apply_errors", node.core.replica.apply_errors),
            ("replay_skipped_ops", node.core.replica.replay_skipped_ops),
        ]

    def commands_processed(self) -> int:
        """Since the start: open connections' counts plus closed ones'."""
        return self.closed_commands_processed + sum(s.commands_processed for s in self.node.sessions())

    def _section_stats(self) -> list[tuple[str, Any]]:
        node = self.node
        processed = self.commands_processed()
        return [
            ("total_connections_received", self.total_connections),
            ("total_commands_processed", processed),
            ("rejected_connections", self.rejected_connections),
            ("client_query_buffer_limit_disconnections", self.limit_disconnections["query"]),
            ("client_output_buffer_limit_disconnections", self.limit_disconnections["output"]),
            ("keyspace_hits", node.core.ks.hits),
            ("keyspace_misses", node.core.ks.misses),
            ("total_error_replies", node.command_stats.total_error_replies),
            ("pubsub_channels", len(node.pubsub.channels)),
            ("pubsub_patterns", len(node.pubsub.patterns)),
            ("pubsubshard_channels", len(node.pubsub.shard_channels)),
            ("tracking_total_keys", len(node.tracking.keys)),
            ("tracking_total_items", node.tracking.items),
            ("tracking_total_prefixes", len(node.tracking.prefixes)),
            # Null invalidations sent because changes elsewhere may have been
            # missed (a dropped peer link, a restarted peer): not in Redis.
            ("tracking_flushes", node.tracking_peers.flushes),
        ]

    def _section_replication(self) -> list[tuple[str, Any]]:
        core = self.node.core
        leader = core.paxos.role == "leader"
        fields: list[tuple[str, Any]] = [
            ("role", "master" if leader else "slave"),
            ("mako_role", core.paxos.role),
        ]
        if leader:
            fields.append(("connected_slaves", len(core.paxos.match)))
        else:
            leader_id = core.paxos.known_leader()
            if leader_id is not None:
                rep = self.node.cfg.find(leader_id)
                if rep is not None:
                    fields += [("master_host", rep.host), ("master_port", rep.resp_port), ("master_link_status", "up")]
                else:
                    fields.append(("master_link_status", "down"))
            else:
                fields.append(("master_link_status", "down"))
        fields += [("master_repl_offset", core.applied_slot)]
        return fields

    def _section_cpu(self) -> list[tuple[str, Any]]:
        t = os.times()
        return [("used_cpu_sys", f"{t.system:.6f}"), ("used_cpu_user", f"{t.user:.6f}")]

    def _section_cluster(self) -> list[tuple[str, Any]]:
        # 1: the CLUSTER commands answer (redis-cli --cluster refuses a node
        # that says 0). Standalone clients do not read it, and every node
        # still serves every key, so they keep working (docs/ARCHITECTURE.md).
        return [("cluster_enabled", 1)]

    def _section_keyspace(self) -> list[tuple[str, Any]]:
        # One line per database holding keys on this node's shard (avg_ttl is
        # not estimated: always 0).
        return [
            (f"db{db}", f"keys={keys},expires={expires},avg_ttl=0")
            for db, (keys, expires) in self.node.core.ks.db_stats().items()
        ]

    def _section_commandstats(self) -> list[tuple[str, Any]]:
        return self.node.command_stats.info_commandstats()

    def _section_errorstats(self) -> list[tuple[str, Any]]:
        return self.node.command_stats.info_errorstats()

    def _section_latencystats(self) -> list[tuple[str, Any]]:
        return self.node.command_stats.info_latencystats()

    def _section_mako(self) -> list[tuple[str, Any]]:
        st = self.node.core.status()
        return [(k, v) for k, v in st.items() if not isinstance(v, (dict, list))]

    def _section_luigi(self) -> list[tuple[str, Any]]:
        # protocol: luigi's order at this node's shard while it leads: how
        # many transactions passed it, how many were bumped above a
        # conflicting timestamp or repositioned to the agreed one.
        luigi = self.node.core.luigi
        if luigi is None:
            return [("luigi_enabled", 0)]
        return [("luigi_enabled", 1), *luigi.stats().items()]

    # -- CONFIG -------------------------------------------------------------------------
    def _build_params(self) -> dict[str, tuple[Callable[[], str], Callable[[str], None] | None]]:
        node = self.node
        cfg = node.cfg

        def set_requirepass(value: str) -> None:
            # Redis: requirepass is the default user's password.
            node.requirepass = value or None
            node.acl.set_requirepass(node.requirepass)
            node.acl_changed()

        def set_bulk(value: str) -> None:
            n = config_live.parse_memory(value)
            if n < 1024:
                raise ValueError("argument must be a memory value of at least 1kb")
            node.proto_max_bulk_len = n

        def set_maxclients(value: str) -> None:
            n = int(value)
            if n < 1:
                raise ValueError("argument must be between 1 and 1000000 inclusive")
            node.maxclients = n

        def set_busy(value: str) -> None:
            n = int(value)
            if n < 0:
                raise ValueError("argument must be between 0 and 2147483647 inclusive")
            cfg.busy_reply_threshold_ms = n

        def set_notify(value: str) -> None:
            node.set_notify_flags(notify.parse_flags(value))

        stats = node.command_stats

        def int_setter(attr: str, lo: int, hi: int) -> Callable[[str], None]:
            def set_value(value: str) -> None:
                n = int(value)
                if not lo <= n <= hi:
                    raise ValueError(f"argument must be between {lo} and {hi} inclusive")
                setattr(stats, attr, n)
            return set_value

        def set_tracking(value: str) -> None:
            if value.lower() not in ("yes", "no"):
                raise ValueError("argument must be 'yes' or 'no'")
            stats.latency_tracking = value.lower() == "yes"

        def set_percentiles(value: str) -> None:
            try:
                pcts = [float(p) for p in value.split()]
            except ValueError:
                raise ValueError("Invalid latency-tracking-info-percentiles parameters") from None
            if any(not 0 <= p <= 100 for p in pcts):
                raise ValueError("Invalid latency-tracking-info-percentiles parameters")
            stats.latency_percentiles = pcts

        const = lambda v: (lambda: str(v))  # noqa: E731
        return {
            "slowlog-log-slower-than": (lambda: str(stats.slowlog_log_slower_than_us),
                                        int_setter("slowlog_log_slower_than_us", -1, 2**63 - 1)),
            "slowlog-max-len": (lambda: str(stats.slowlog_max_len), int_setter("slowlog_max_len", 0, 2**63 - 1)),
            "latency-monitor-threshold": (lambda: str(stats.latency_monitor_threshold_ms),
                                          int_setter("latency_monitor_threshold_ms", 0, 2**63 - 1)),
            "latency-tracking": (lambda: "yes" if stats.latency_tracking else "no", set_tracking),
            "latency-tracking-info-percentiles": (lambda: " ".join(f"{p:g}" for p in stats.latency_percentiles),
                                                  set_percentiles),
            "requirepass": (lambda: node.requirepass or "", set_requirepass),
            "proto-max-bulk-len": (lambda: str(node.proto_max_bulk_len), set_bulk),
            "maxclients": (lambda: str(node.maxclients), set_maxclients),
            "max-txn-bytes": (const(cfg.max_txn_bytes), None),
            "port": (const(node.me.resp_port), None),
            "bind": (const(cfg.bind), None),
            "dir": (const(os.path.abspath(os.path.join(node.data_dir, node.me.name))), None),
            "databases": (const(node.databases), None),
            "save": (const(""), None),
            "appendonly": (const("yes"), None),
            "appendfsync": (const("always"), None),
            "maxmemory": (const(0), None),
            "maxmemory-policy": (const("noeviction"), None),
            "busy-reply-threshold": (lambda: str(cfg.busy_reply_threshold_ms), set_busy),
            "lua-time-limit": (lambda: str(cfg.busy_reply_threshold_ms), set_busy),
            "notify-keyspace-events": (lambda: notify.flags_text(node.notify_flags), set_notify),
            "cluster-enabled": (const("yes"), None),
            "election-timeout-ms": (const(cfg.election_timeout_ms), None),
            "heartbeat-ms": (const(cfg.heartbeat_ms), None),
            "checkpoint-interval-ms": (const(cfg.checkpoint_interval_ms), None),
            "mako-protocol": (const(cfg.protocol), None),
            "mako-ack": (const(cfg.ack), None),
            **config_live.live_params(node),
        }

    def params(self) -> dict[str, tuple[Callable[[], str], Callable[[str], None] | None]]:
        """Every CONFIG parameter: (getter, setter or None when fixed)."""
        return self._params

    def config_get(self, patterns: list[str]) -> list[tuple[str, str]]:
        out: dict[str, str] = {}
        for pattern in patterns:
            matcher = glob.compile_matcher(pattern.lower().encode())
            for name, (getter, _) in self._params.items():
                if name not in out and matcher(name.encode()):
                    out[name] = getter()
        return list(out.items())

    def config_set(self, pairs: list[tuple[str, str]]) -> None:
        seen: set[str] = set()
        for name, value in pairs:
            param = self._params.get(name.lower())
            if param is None:
                raise CommandError(errors.CONFIG_UNKNOWN_PARAM.format(name))
            if param[1] is None:
                raise CommandError(errors.CONFIG_INVALID_VALUE.format(name, "can't set immutable config"))
            if name.lower() in seen:
                raise CommandError(errors.CONFIG_INVALID_VALUE.format(name, "duplicate parameter"))
            seen.add(name.lower())
        # All or nothing, as Redis: a value that fails puts back the ones set before it.
        done: list[tuple[str, str]] = []
        for name, value in pairs:
            getter, setter = self._params[name.lower()]
            before = getter()
            try:
                setter(value)  # type: ignore[misc]
            except ValueError as exc:
                for done_name, old in reversed(done):
                    self._params[done_name][1](old)  # type: ignore[misc]
                raise CommandError(errors.CONFIG_INVALID_VALUE.format(name, exc)) from None
            done.append((name.lower(), before))
