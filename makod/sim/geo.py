"""The simulated WAN (``--geo``): replicas in datacenters, delays between them.

The same ``LinkModel`` the real server uses (makod/links.py) adds each
message's WAN delay on top of the fault profile's (loss, spikes and
partitions still come from faults.py, clocks still drift per replica). The
layout is drawn from its own seeded rng, so ``--geo`` changes nothing in a
seed's fault draws; each message's jitter comes from the world's rng.

Unlike the real transport, the simulator does not hold messages in FIFO
order per link: its network reorders on purpose (delay spikes), which
covers everything TCP could do and more.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from makod.links import Link, LinkModel

# One-way delays between two datacenters (ms): a region apart, a continent, an ocean.
DELAYS_MS = (5.0, 25.0, 50.0)
JITTERS_MS = (0.5, 2.0, 5.0)


@dataclass
class Wan:
    links: LinkModel
    datacenter: dict[int, str]  # node id -> its datacenter

    def delay_ms(self, src: int, dst: int, rng: random.Random) -> float:
        return self.links.delay_ms(self.datacenter[src], self.datacenter[dst], rng)

    def describe(self) -> str:
        where = " ".join(f"n{n}:{dc}" for n, dc in sorted(self.datacenter.items()))
        return f"{self.links!r}; {where}"


def draw_wan(rng: random.Random, members: list[tuple[list[int], list[int]]]) -> Wan:
    """Two or three datacenters with a delay and jitter per pair. Usually each
    shard's k-th voter sits in datacenter k (so shard leaders, first voters,
    gather in dc0 as with leader_datacenter: certification stays local,
    replication crosses the WAN); sometimes each shard is rotated, so leaders
    sit apart and cross-shard transactions cross the WAN too. Learners sit
    beside their shard's first voter, as the design places them."""
    count = rng.choice([2, 3, 3])
    dcs = [f"dc{i}" for i in range(count)]
    pairs = {
        (dcs[i], dcs[j]): Link(rng.choice(DELAYS_MS), rng.choice(JITTERS_MS))
        for i in range(count) for j in range(i + 1, count)
    }
    rotate = rng.random() < 0.3
    datacenter: dict[int, str] = {}
    for shard, (voters, learners) in enumerate(members):
        shift = shard if rotate else 0
        for k, node in enumerate(voters):
            datacenter[node] = dcs[(k + shift) % count]
        for node in learners:
            datacenter[node] = datacenter[voters[0]]
    return Wan(LinkModel(pairs=pairs), datacenter)
