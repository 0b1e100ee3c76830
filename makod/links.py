"""The WAN between datacenters: one-way delay and jitter per pair of datacenters.

Pure: no clock and no global randomness. A message's jitter is drawn from
the ``random.Random`` the caller passes (the simulator's seeded one, the
server's own), so a simulated seed replays exactly. The config builds one
``LinkModel`` (config.py, ``links:``); the real peer transport and the
simulator both ask it how long a message takes.

A link's ``delay_ms`` is the floor (propagation); ``jitter_ms`` adds up to
that much more per message, uniformly (queueing). A delay is never below the
floor, so no clamping at zero is needed and the mean is delay + jitter / 2.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping

# Past this a cluster cannot hold a lease anyway (config.py also checks the
# round trip against election_timeout_ms); it only catches typos in units.
MAX_LINK_MS = 10_000


@dataclass(frozen=True)
class Link:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0


NO_DELAY = Link()


def pair_key(dc_a: str, dc_b: str) -> tuple[str, str]:
    """Links are symmetric: (a, b) and (b, a) are one link."""
    return (dc_a, dc_b) if dc_a <= dc_b else (dc_b, dc_a)


class LinkModel:
    """Delays between datacenters: listed pairs, else ``default`` between two
    distinct datacenters, else nothing within one datacenter (a pair
    ``(dc, dc)`` may still set a delay inside ``dc``)."""

    def __init__(self, default: Link = NO_DELAY, pairs: Mapping[tuple[str, str], Link] | None = None) -> None:
        self.default = default
        self.pairs = {pair_key(a, b): link for (a, b), link in (pairs or {}).items()}

    def link(self, dc_a: str, dc_b: str) -> Link:
        found = self.pairs.get(pair_key(dc_a, dc_b))
        if found is not None:
            return found
        return NO_DELAY if dc_a == dc_b else self.default

    def base_delay_ms(self, dc_a: str, dc_b: str) -> float:
        """The floor of the one-way delay, without jitter."""
        return self.link(dc_a, dc_b).delay_ms

    def delay_ms(self, dc_a: str, dc_b: str, rng: random.Random) -> float:
        """One message's one-way delay. A link without jitter draws nothing
        from ``rng``: a simulation without WAN jitter keeps its random stream,
        so seeds recorded before links existed replay as they did."""
        link = self.link(dc_a, dc_b)
        if link.jitter_ms == 0:
            return link.delay_ms
        return link.delay_ms + rng.random() * link.jitter_ms

    def has_delay(self) -> bool:
        """Whether any message may be delayed at all (else senders skip the model)."""
        return any(l.delay_ms or l.jitter_ms for l in (self.default, *self.pairs.values()))

    def __repr__(self) -> str:
        pairs = ", ".join(f"{a}-{b}: {l.delay_ms}+{l.jitter_ms}" for (a, b), l in sorted(self.pairs.items()))
        return f"LinkModel(default {self.default.delay_ms}+{self.default.jitter_ms} ms; {pairs})"


class FifoRelease:
    """Release times on one ordered link (a TCP connection).

    With jitter, a later message may draw a shorter delay than an earlier
    one; TCP would never let it overtake, so its release is held to be no
    earlier than the previous message's. Times are the caller's (ms).
    """

    def __init__(self) -> None:
        self.last_ms = float("-inf")

    def release_at(self, now_ms: float, delay_ms: float) -> float:
        at = max(now_ms + delay_ms, self.last_ms)
        self.last_ms = at
        return at
