"""What a node's ``/metrics`` says (Prometheus text format, prometheus-client).

Read from the node at scrape time, on the event loop (net/metrics_http.py
calls ``render``), so nothing here runs per command and nothing is read
while the loop changes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from makod.server import Node

ROLES = ("leader", "candidate", "follower", "learner")
BUCKETS_US = [1 << k for k in range(27)]  # 1 us .. 67 s


class NodeCollector:
    def __init__(self, node: "Node") -> None:
        self.node = node

    def collect(self) -> Iterator[Any]:
        node = self.node
        me = node.me
        base = {"node": me.name, "shard": str(me.shard)}
        labels, values = list(base), list(base.values())

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(values, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=labels)
            c.add_metric(values, value)
            return c

        # -- commands ------------------------------------------------------------------------
        stats = node.command_stats
        calls = CounterMetricFamily("makod_commands", "Commands run, by command.", labels=[*labels, "cmd"])
        failed = CounterMetricFamily("makod_commands_failed", "Commands that answered an error.", labels=[*labels, "cmd"])
        rejected = CounterMetricFamily("makod_commands_rejected", "Commands refused before they ran.",
                                       labels=[*labels, "cmd"])
        latency = HistogramMetricFamily("makod_command_duration_seconds",
                                        "Time until a command's reply may go out (replication and fsync included).",
                                        labels=[*labels, "cmd"])
        for name, entry in sorted(stats.commands.items()):
            calls.add_metric([*values, name], entry[0])
            failed.add_metric([*values, name], entry[3])
            rejected.add_metric([*values, name], entry[2])
            _calls, buckets = stats.histogram_buckets(name)
            if buckets:
                # The same bounds for every command (powers of two of a
                # microsecond), as Prometheus's histogram_quantile expects.
                le, seen = [], 0
                for bound in BUCKETS_US:
                    seen = buckets.get(bound, seen)
                    le.append((f"{bound / 1e6:g}", seen))
                latency.add_metric([*values, name], [*le, ("+Inf", max(buckets.values()))], sum_value=entry[1] / 1e6)
        yield calls
        yield failed
        yield rejected
        yield latency
        errors = CounterMetricFamily("makod_error_replies", "Error replies, by prefix.", labels=[*labels, "prefix"])
        for prefix, n in sorted(stats.errors.items()):
            errors.add_metric([*values, prefix], n)
        yield errors
        yield counter("makod_commands_processed", "Commands received, all connections.", node.stats.commands_processed())
        yield gauge("makod_connected_clients", "Client connections open.", len(node.clients))
        yield counter("makod_keyspace_hits", "Read lookups that found their key.", node.core.ks.hits)
        yield counter("makod_keyspace_misses", "Read lookups that did not.", node.core.ks.misses)
        yield gauge("makod_keys", "Keys held by this replica.", len(node.core.ks))

        # -- Paxos ---------------------------------------------------------------------------
        st = node.core.status()
        role = GaugeMetricFamily("makod_paxos_role", "1 for this replica's current role.", labels=[*labels, "role"])
        for r in ROLES:
            role.add_metric([*values, r], 1 if st.get("role") == r else 0)
        yield role
        yield gauge("makod_paxos_ballot", "The highest ballot promised.", st.get("ballot", 0))
        yield gauge("makod_paxos_last_index", "Last log slot held.", st.get("last_index", 0))
        yield gauge("makod_paxos_commit_index", "Last slot known chosen.", st.get("commit_index", 0))
        yield gauge("makod_paxos_applied_index", "Last slot applied to the state.", st.get("applied_index", 0))
        yield gauge("makod_paxos_apply_lag_slots", "Chosen but not yet applied.",
                    max(0, st.get("commit_index", 0) - st.get("applied_index", 0)))
        follower = GaugeMetricFamily("makod_paxos_follower_lag_slots",
                                     "At a leader: slots each follower has yet to acknowledge.",
                                     labels=[*labels, "follower"])
        last = st.get("last_index", 0)
        for peer, match in sorted((st.get("follower_match") or {}).items()):
            follower.add_metric([*values, node.node_name(int(peer))], max(0, last - match))
        yield follower
        yield counter("makod_paxos_elections", "Campaigns this replica started.", node.driver.elections)
        yield counter("makod_paxos_role_changes", "Role changes of this replica.", node.driver.role_changes)

        # -- transactions --------------------------------------------------------------------
        coord = node.core.coord
        yield counter("makod_txn_dist_commits", "Distributed transactions this node coordinated to commit.",
                      coord.commits)
        aborts = CounterMetricFamily("makod_txn_dist_aborts", "Aborted attempts of distributed transactions, by cause.",
                                     labels=[*labels, "cause"])
        for cause, n in sorted(coord.aborts.items()):
            aborts.add_metric([*values, cause], n)
        yield aborts
        yield counter("makod_txn_rolled_back", "Speculative transactions rolled back (their epoch failed).",
                      st.get("rolled_back", 0))
        yield gauge("makod_txn_speculative", "Transactions installed but not yet durable everywhere.",
                    st.get("speculative_txns", 0))
        yield gauge("makod_txn_watermark_lag", "This shard's clock minus its durable watermark.",
                    max(0, st.get("clock", 0) - st.get("watermark", 0)))

        # -- storage -------------------------------------------------------------------------
        yield counter("makod_checkpoints", "State checkpoints written.", node.driver.checkpoints)
        yield counter("makod_log_writes", "Log writes (each one fsync).", node.driver.persist_groups)
        yield counter("makod_log_entries_written", "Log entries written.", node.driver.persist_entries)
        writer = node.disk.log_writer
        if writer is not None:
            yield counter("makod_log_write_seconds", "Time the log writer spent in writes and fsyncs.",
                          writer.job_seconds)


def render(node: "Node") -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return generate_latest(registry)
