"""Client-side caching across the cluster: which nodes want to hear about
changed keys, and telling them without ever letting one miss a change
unnoticed.

A transaction's changed keys are known where it is released: at its shard's
leader, or at the coordinator of a distributed one (NodeCore.finish). A
client tracking keys may sit on any node. So:

* A node with tracking clients (or that had some in the last
  ``LINGER_MS``) sends ``TrackingInterest`` to every peer every
  ``REFRESH_MS``. A peer that hears it starts collecting changed keys
  (``wants_changes``), and answers ``TrackingAck`` with the sequence number
  of the last ``TrackingInvalidate`` it sent that node.
* Changed keys go to every interested peer as ``TrackingInvalidate``,
  numbered per peer. A peer forgets an interest not refreshed for
  ``FORGET_MS``; taking one up again skips a number.
* The receiver checks that the numbers run on without a gap, and that the
  sender's boot id did not change (a restarted peer forgot it). A gap, a
  new boot id, or the first contact with a peer means invalidations may
  have been lost (a link that dropped messages, a peer that did not know
  yet): every tracking client of the node then gets a null invalidation,
  Redis's "flush your whole cache". Never a stale cache, at worst a cold one.

The first contact is safe because a node decides whether to report a
transaction's keys when the transaction finishes (NodeCore.finish), and
answers an interest only after turning that on: any read that starts after
the receiver's flush sees the writes that finished before, or waits for them.
Delivery is by the peer links (makod/net/peers.py), FIFO per pair.
"""

from __future__ import annotations

from typing import Any, Callable

from makod.core.messages import Message, message
from makod.net.peers import MAX_MESSAGE_BYTES

REFRESH_MS = 500
FORGET_MS = 2500
LINGER_MS = 60_000
# Keys per TrackingInvalidate, by bytes: one peer frame holds them.
MAX_KEY_BYTES = MAX_MESSAGE_BYTES // 2


@message
class TrackingInterest(Message):
    """Node ``src`` has clients that track keys (sent every REFRESH_MS)."""

    __slots__ = ("src", "boot")
    TYPE = 62

    def __init__(self, src: int, boot: int) -> None:
        self.src, self.boot = src, boot


@message
class TrackingAck(Message):
    """Node ``src`` (booted as ``boot``) reports changed keys to the asker;
    ``seq``: the number of the last TrackingInvalidate it sent it."""

    __slots__ = ("src", "boot", "seq")
    TYPE = 63

    def __init__(self, src: int, boot: int, seq: int) -> None:
        self.src, self.boot, self.seq = src, boot, seq


@message
class TrackingInvalidate(Message):
    """Keys changed at node ``src`` (``flush``: everything), message number ``seq``."""

    __slots__ = ("src", "boot", "seq", "keys", "flush")
    TYPE = 64

    def __init__(self, src: int, boot: int, seq: int, keys: list, flush: bool) -> None:
        self.src, self.boot, self.seq, self.keys, self.flush = src, boot, seq, keys, flush


class TrackingPeers:
    """This node's side of the protocol above. ``table`` is the node's
    TrackingTable (resp/tracking.py); ``send(node, msg)`` the peer transport;
    ``changed()`` tells the host that ``wants_changes`` may have flipped."""

    def __init__(self, node_id: int, peers: list[int], boot: int, table: Any,
                 send: Callable[[int, Message], None], changed: Callable[[], None]) -> None:
        self.node_id = node_id
        self.peers = peers
        self.boot = boot
        self.table = table
        self.send = send
        self.changed = changed
        self.now_ms = 0.0
        self.last_refresh_ms = -float("inf")
        self.last_tracked_ms = -float("inf")  # when this node last had a tracking client
        # As a sender: peer -> when it last said it is interested; our last seq to it.
        self.interested: dict[int, float] = {}
        self.sent_seq: dict[int, int] = {}
        # As a receiver: peer -> (its boot id, the last seq we got from it).
        self.heard: dict[int, tuple[int, int]] = {}
        self.flushes = 0  # null invalidations for possibly missed changes

    @property
    def wants_changes(self) -> bool:
        return bool(self.interested) or self.table.active

    def tick(self, now_ms: float) -> None:
        self.now_ms = now_ms
        before = self.wants_changes
        if self.table.active:
            self.last_tracked_ms = now_ms
        if now_ms - self.last_tracked_ms < LINGER_MS and now_ms - self.last_refresh_ms >= REFRESH_MS:
            self.refresh()
        stale = [peer for peer, at in self.interested.items() if now_ms - at > FORGET_MS]
        for peer in stale:
            del self.interested[peer]
        if before != self.wants_changes:
            self.changed()

    def refresh(self) -> None:
        """Tell every peer we track (at once when a first client starts)."""
        self.last_refresh_ms = self.now_ms
        self.last_tracked_ms = max(self.last_tracked_ms, self.now_ms)
        msg = TrackingInterest(self.node_id, self.boot)
        for peer in self.peers:
            self.send(peer, msg)

    # -- as the node where keys change -------------------------------------------------------------
    def on_interest(self, msg: TrackingInterest) -> None:
        peer = msg.src
        if peer not in self.interested:
            # Skip a number: the asker sees a gap and flushes whatever it
            # cached while we were not telling it (or not yet).
            self.sent_seq[peer] = self.sent_seq.get(peer, 0) + 1
            self.interested[peer] = self.now_ms
            self.changed()  # collect changed keys before answering
        self.interested[peer] = self.now_ms
        self.send(peer, TrackingAck(self.node_id, self.boot, self.sent_seq[peer]))

    def on_changes(self, keys: list[bytes], flush: bool) -> None:
        """Keys changed by transactions released here: tell the interested peers."""
        if not self.interested:
            return
        chunks: list[list[bytes]] = []
        size, chunk = 0, []
        for key in keys:
            if chunk and size + len(key) > MAX_KEY_BYTES:
                chunks.append(chunk)
                size, chunk = 0, []
            chunk.append(key)
            size += len(key) + 8
        if chunk or flush:
            chunks.append(chunk)
        for peer in self.interested:
            for i, part in enumerate(chunks):
                seq = self.sent_seq.get(peer, 0) + 1
                self.sent_seq[peer] = seq
                self.send(peer, TrackingInvalidate(self.node_id, self.boot, seq, part, flush and i == len(chunks) - 1))

    # -- as the node whose clients track -----------------------------------------------------------
    def on_ack(self, msg: TrackingAck) -> None:
        if self.heard.get(msg.src) != (msg.boot, msg.seq):
            self._missed()
        self.heard[msg.src] = (msg.boot, msg.seq)

    def on_invalidate(self, msg: TrackingInvalidate) -> None:
        if self.heard.get(msg.src) != (msg.boot, msg.seq - 1):
            self._missed()
        self.heard[msg.src] = (msg.boot, msg.seq)
        if msg.flush:
            self.table.flush_all()
        elif msg.keys:
            self.table.invalidate(msg.keys)

    def _missed(self) -> None:
        table = self.table
        # Only if some client may cache something: a key read, or a BCAST prefix.
        if table.keys or table.prefixes:
            self.flushes += 1
            table.flush_all()
