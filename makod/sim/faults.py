"""Fault parameters, all drawn from one seed (TigerBeetle's VOPR habit).

A seed fixes every knob: how lossy and slow the network is, how often it
partitions, how often replicas crash, pause or restart, how slow the disk is.
Printing the seed is enough to replay a run exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields


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
    crash_every_ms: float = 0.0  # mean time between crashes; 0 = never
    restart_after_ms: float = 1500.0
    pause_every_ms: float = 0.0  # a replica stops processing (a GC pause, a stopped VM)
    pause_length_ms: float = 1500.0
    disk_latency_ms_min: float = 0.1
    disk_latency_ms_max: float = 2.0
    crash_leader_bias: float = 0.5  # share of crashes aimed at a current leader
    pause_leader_bias: float = 0.5  # share of pauses aimed at a current leader
    # Crash an acceptor just after it promised (then restart it at once): the
    # window in which an unpersisted promise would be forgotten.
    crash_after_promise_rate: float = 0.0
    # A crash with a disk write in progress: the share of such writes that
    # still land (on disk, though the process never learned it).
    land_on_crash_rate: float = 0.5

    @classmethod
    def from_seed(cls, rng: random.Random, intensity: float = 1.0) -> "Faults":
        """Random faults; ``intensity`` 0 gives a perfect world, 1 a hostile one."""
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
        return f

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))
