"""One-way delay estimates per peer, from the send times messages carry.

A sample is ``receive wall time - send wall time`` (both microseconds, on two
different clocks, measured by the receiver and sent back): it is the delay
plus the clock offset between the two nodes, and may be negative. Samples are kept anyway: a timestamp stamped as
``sender now + estimate`` then lands near the receiver's own clock, which is
what Luigi needs (clocks serve speed only). The estimate is a percentile over
a sliding window of the latest samples.
"""

from __future__ import annotations

from collections import deque

WINDOW = 64
PERCENTILE = 0.9
MAX_PEERS = 1024


class OwdEstimator:
    def __init__(self, window: int = WINDOW, percentile: float = PERCENTILE) -> None:
        self.window = window
        self.percentile = percentile
        self.samples: dict[int, deque[int]] = {}
        self._cache: dict[int, int] = {}

    def observe(self, peer: int, owd_us: int) -> None:
        """One sample of the delay to ``peer``: its clock on arrival minus ours at sending."""
        samples = self.samples.get(peer)
        if samples is None:
            if len(self.samples) >= MAX_PEERS:
                return
            samples = self.samples[peer] = deque(maxlen=self.window)
        samples.append(owd_us)
        self._cache.pop(peer, None)

    def estimate_us(self, peer: int, default_us: int = 0) -> int:
        """The window's percentile for ``peer`` (``default_us`` before any sample)."""
        cached = self._cache.get(peer)
        if cached is not None:
            return cached
        samples = self.samples.get(peer)
        if not samples:
            return default_us
        ordered = sorted(samples)
        value = ordered[min(len(ordered) - 1, int(len(ordered) * self.percentile))]
        self._cache[peer] = value
        return value
