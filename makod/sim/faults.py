"""Fault parameters, all drawn from one seed (TigerBeetle's VOPR habit).

A seed fixes every knob: how lossy and slow the network is, how often it
partitions (both ways or one way), how often replicas crash, pause,
restart or hand leadership over, how slow the disk is, how far each
replica's clocks are off. Printing the seed is enough to replay a run.

Profiles set how hostile the world is:

* ``calm``: a LAN on a good day: rare, short faults;
* ``default``: what the suite has always run;
* ``harsh``: crashes every few hundred ms with restarts after 0-20 ms, frequent
  partitions (some one-way, some one link only), 2 s delay spikes, long pauses, duplicated and
  very late messages, handovers under load, clocks off by up to the bound the
  lease rules assume.

Clocks (docs/ARCHITECTURE.md, "Clocks"): each replica's monotonic clock runs
at its own rate, within ``MAX_CLOCK_RATE_ERROR`` of true time, from its own
offset; it never goes back. Its wall clock (used only for key expiry, which
the leader decides and replicates) may also step, backwards included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

PROFILES = ("calm", "default", "harsh")

# The lease rules assume two replicas' clocks run at rates that differ by less
# than lease_fraction allows (paxos.py): 0.9 of the timeout covers up to 5%
# each way. The simulator stays just inside that.
MAX_CLOCK_RATE_ERROR = 0.04


@dataclass
class Faults:
    drop_rate: float = 0.0  # per message
    duplicate_rate: float = 0.0
    delay_ms_min: float = 1.0
    delay_ms_max: float = 5.0
    delay_spike_rate: float = 0.0  # a message occasionally takes much longer (reordering)
    delay_spike_ms: float = 200.0
    partition_every_ms: float = 0.0  # mean time between partitions; 0 = never
    partition_length_ms: float = 1000.0
    one_way_share: float = 0.0  # share of partitions that cut one direction only
    # Share of partitions that cut one link only, both ways, between two
    # replicas of a shard: each still hears the third (a bridge, not a
    # clean split), so the third can be asked to vote while it acknowledges
    # a leader. Harsh only; not drawn (old seeds keep their draws).
    link_cut_share: float = 0.0
    crash_every_ms: float = 0.0  # mean time between crashes; 0 = never
    restart_after_ms: float = 1500.0
    pause_every_ms: float = 0.0  # a replica stops processing (a GC pause, a stopped VM)
    pause_length_ms: float = 1500.0
    handover_every_ms: float = 0.0  # a leader hands leadership to another voter (makoctl failover)
    disk_latency_ms_min: float = 0.1
    disk_latency_ms_max: float = 2.0
    crash_leader_bias: float = 0.5  # share of crashes aimed at a current leader
    crash_busy_bias: float = 0.0  # share aimed at a replica with a disk write in flight
    pause_leader_bias: float = 0.5  # share of pauses aimed at a current leader
    # Crash an acceptor just after it promised (then restart it at once): the
    # window in which an unpersisted promise would be forgotten.
    crash_after_promise_rate: float = 0.0
    # A crash with a disk write in progress: the share of such writes that
    # still land (on disk, though the process never learned it).
    land_on_crash_rate: float = 0.5
    clock_rate_error: float = 0.0  # each replica's clock rate is within 1 +- this
    clock_offset_ms: float = 0.0  # each replica's clocks start up to this far apart
    wall_step_every_ms: float = 0.0  # a replica's wall clock jumps (NTP), backwards or forwards
    wall_step_ms: float = 0.0
    late_duplicate_share: float = 0.0  # share of duplicated messages whose copy arrives 1-6 s late
    nemesis_every_ms: float = 0.0  # a scripted fault pattern (nemesis.py)
    # Storage pace: how often replicas checkpoint, and how much log they keep
    # behind a checkpoint (little: restarts and lagging followers depend on
    # checkpoints and snapshots, not on replaying the log).
    checkpoint_every_ms: float = 500.0
    log_retain_slots: int = 30
    # How long a participant holds a prepared transaction before it asks the
    # coordinator's shard what became of it.
    orphan_query_ms: int = 1000

    @classmethod
    def from_seed(cls, rng: random.Random, intensity: float = 1.0, profile: str = "default") -> "Faults":
        """Random faults of a profile; ``intensity`` 0 gives a perfect world."""
        if profile == "calm":
            f = cls._calm(rng)
        elif profile == "harsh":
            f = cls._harsh(rng)
        elif profile == "default":
            f = cls._default(rng, intensity)
        else:
            raise ValueError(f"unknown fault profile {profile!r} (expected one of {', '.join(PROFILES)})")
        if intensity == 0:
            f = cls()
        return f

    @classmethod
    def _default(cls, rng: random.Random, intensity: float) -> "Faults":
        f = cls()
        f.drop_rate = rng.choice([0.0, 0.01, 0.05, 0.1]) * intensity
        f.duplicate_rate = rng.choice([0.0, 0.01, 0.05]) * intensity
        f.delay_ms_min = rng.choice([0.1, 1.0, 5.0])
        f.delay_ms_max = f.delay_ms_min + rng.choice([1.0, 10.0, 40.0])
        f.delay_spike_rate = rng.choice([0.0, 0.01, 0.03]) * intensity
        f.delay_spike_ms = rng.choice([100.0, 500.0, 2000.0])
        f.partition_every_ms = rng.choice([0.0, 3000.0, 1500.0]) if intensity else 0.0
        f.partition_length_ms = rng.choice([300.0, 1000.0, 3000.0])
        f.crash_every_ms = rng.choice([0.0, 4000.0, 2000.0, 600.0]) if intensity else 0.0
        f.restart_after_ms = rng.choice([20.0, 200.0, 1500.0, 4000.0])
        f.pause_every_ms = rng.choice([0.0, 5000.0, 1500.0]) if intensity else 0.0
        f.pause_length_ms = rng.choice([300.0, 1500.0])
        f.pause_leader_bias = rng.choice([0.0, 0.8])
        f.crash_after_promise_rate = rng.choice([0.0, 0.0, 0.3]) * intensity
        f.disk_latency_ms_max = rng.choice([0.5, 2.0, 10.0])
        f.crash_leader_bias = rng.choice([0.0, 0.5, 0.9])
        # Newer knobs, drawn after the old ones so old seeds keep their faults.
        f.one_way_share = rng.choice([0.0, 0.3])
        f.handover_every_ms = rng.choice([0.0, 0.0, 2500.0])
        f.crash_busy_bias = rng.choice([0.0, 0.3])
        f.clock_rate_error = rng.choice([0.0, 0.01, MAX_CLOCK_RATE_ERROR])
        f.clock_offset_ms = rng.choice([0.0, 5000.0])
        f.wall_step_every_ms = rng.choice([0.0, 3000.0])
        f.wall_step_ms = 500.0
        f.late_duplicate_share = rng.choice([0.0, 0.2])
        f.nemesis_every_ms = rng.choice([0.0, 1000.0, 2000.0])
        f.checkpoint_every_ms = rng.choice([200.0, 500.0])
        f.log_retain_slots = rng.choice([4, 30])
        f.orphan_query_ms = rng.choice([200, 1000])
        return f

    @classmethod
    def _calm(cls, rng: random.Random) -> "Faults":
        f = cls()
        f.drop_rate = rng.choice([0.0, 0.001, 0.01])
        f.delay_ms_min = rng.choice([0.1, 0.5])
        f.delay_ms_max = f.delay_ms_min + rng.choice([0.5, 2.0])
        f.partition_every_ms = rng.choice([0.0, 0.0, 5000.0])
        f.partition_length_ms = 500.0
        f.crash_every_ms = rng.choice([0.0, 0.0, 5000.0])
        f.restart_after_ms = rng.choice([200.0, 1000.0])
        f.handover_every_ms = rng.choice([0.0, 3000.0])
        f.disk_latency_ms_max = rng.choice([0.5, 2.0])
        f.clock_rate_error = rng.choice([0.0, 0.001])
        # Now and then one scripted pattern (nemesis.py): on an otherwise calm
        # network it plays out undisturbed, which the busier profiles rarely let
        # happen (drawn last: the knobs above keep their draws).
        f.nemesis_every_ms = rng.choice([0.0, 0.0, 2500.0])
        return f

    @classmethod
    def _harsh(cls, rng: random.Random) -> "Faults":
        f = cls()
        f.drop_rate = rng.choice([0.01, 0.05, 0.1])
        f.duplicate_rate = rng.choice([0.01, 0.05])
        f.delay_ms_min = rng.choice([0.1, 1.0, 5.0])
        f.delay_ms_max = f.delay_ms_min + rng.choice([10.0, 40.0])
        f.delay_spike_rate = rng.choice([0.01, 0.03])
        f.delay_spike_ms = rng.choice([500.0, 2000.0, 5000.0])
        f.partition_every_ms = rng.choice([800.0, 1500.0])
        f.partition_length_ms = rng.choice([300.0, 1000.0, 3000.0])
        f.one_way_share = rng.choice([0.3, 0.5])
        f.crash_every_ms = rng.choice([300.0, 600.0, 1500.0])
        f.restart_after_ms = rng.choice([0.0, 10.0, 20.0, 200.0])
        f.pause_every_ms = rng.choice([0.0, 1500.0])
        f.pause_length_ms = rng.choice([300.0, 1500.0])
        f.pause_leader_bias = rng.choice([0.0, 0.8])
        f.handover_every_ms = rng.choice([0.0, 1000.0])
        f.crash_after_promise_rate = rng.choice([0.0, 0.3])
        f.disk_latency_ms_max = rng.choice([0.5, 2.0, 10.0, 30.0])
        f.crash_leader_bias = rng.choice([0.3, 0.6, 0.9])
        f.crash_busy_bias = rng.choice([0.0, 0.3, 0.6])
        f.clock_rate_error = rng.choice([0.01, MAX_CLOCK_RATE_ERROR])
        f.clock_offset_ms = rng.choice([0.0, 60_000.0])
        f.wall_step_every_ms = rng.choice([0.0, 1000.0])
        f.wall_step_ms = rng.choice([200.0, 5000.0])
        f.late_duplicate_share = rng.choice([0.2, 0.5])
        f.nemesis_every_ms = rng.choice([500.0, 1000.0])
        f.checkpoint_every_ms = rng.choice([100.0, 500.0])
        f.log_retain_slots = rng.choice([2, 30])
        f.orphan_query_ms = rng.choice([100, 1000])
        f.link_cut_share = 0.3
        return f

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))
