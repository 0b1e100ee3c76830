"""Pub/sub across the cluster: the node's hub and the peer message that carries publishes.

The hub knows which of this node's sessions listen to which channel, pattern
and shard channel (a session's own view is resp/pubsub.py). A message
published on a node is delivered to its local subscribers at once and sent,
as one ``PubsubPublish`` per peer, to every other node (every shard, every
replica), which delivers it locally: as in Redis Cluster, a subscriber on
any node gets every PUBLISH of the cluster. Sharded messages (SPUBLISH) go to
the replicas of the shard that owns the channel's hash slot only.

Like Redis's, delivery is at most once and fire-and-forget: a peer link that
is down drops what it would carry (makod/net/peers.py). Peer links are FIFO,
so one subscriber gets the messages published through one node in publish
order. Nothing here touches the keyspace or the replicated log.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from makod.core.messages import Message, message
from makod.kv.errors import CommandError
from makod.kv.hashslot import key_slot
from makod.net.peers import MAX_MESSAGE_BYTES
from resp import pubsub as fmt

log = logging.getLogger("makod.pubsub")

# A message must fit one peer frame (the receiver closes a link that sends a
# bigger one); the margin covers msgpack's and the frame's headers.
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - 4096
TOO_LARGE = f"ERR channel and message together exceed {MAX_PAYLOAD_BYTES} bytes, the most a node can send to its peers"

GLOBAL, SHARDED = 0, 1


@message
class PubsubPublish(Message):
    """A message published through node ``src``: ``kind`` GLOBAL (PUBLISH) or
    SHARDED (SPUBLISH, sent only to the replicas of the channel's shard)."""

    __slots__ = ("src", "kind", "channel", "payload")
    TYPE = 61

    def __init__(self, src: int, kind: int, channel: bytes, payload: bytes) -> None:
        self.src, self.kind, self.channel, self.payload = src, kind, channel, payload


class PubsubHub:
    """This node's subscribers, and publishing through the cluster.

    ``send(node_id, msg)`` is the peer transport; ``wake(sessions)`` tells the
    server that these sessions have output to flush; ``shard_of_slot`` and
    ``redirect_to(shard, tls)`` ("host:port" of that shard's leader) come
    from the node's slot map and topology.
    """

    def __init__(
        self,
        node_id: int,
        shard: int,
        replicas_by_shard: list[list[int]],
        send: Callable[[int, Message], None],
        wake: Callable[[list[Any]], None],
        shard_of_slot: Callable[[int], int],
        redirect_to: Callable[[int, bool], str],
        matcher_factory: Callable[[bytes], Callable[[bytes], bool]],
    ) -> None:
        self.node_id = node_id
        self.shard = shard
        self.replicas_by_shard = replicas_by_shard
        self.others = [n for ids in replicas_by_shard for n in ids if n != node_id]
        self.send = send
        self.wake = wake
        self.shard_of_slot = shard_of_slot
        self.redirect_to = redirect_to
        self.matcher_factory = matcher_factory
        # channel -> sessions (dicts as insertion-ordered sets)
        self.channels: dict[bytes, dict[Any, None]] = {}
        self.patterns: dict[bytes, tuple[Callable[[bytes], bool], dict[Any, None]]] = {}
        self.shard_channels: dict[bytes, dict[Any, None]] = {}
        self.published = 0  # PUBLISH/SPUBLISH run on this node
        self.received = 0  # publishes that came from peers

    def set_replicas(self, replicas_by_shard: list[list[int]]) -> None:
        """The topology changed (MAKO TOPOLOGY RELOAD)."""
        self.replicas_by_shard = replicas_by_shard
        self.others = [n for ids in replicas_by_shard for n in ids if n != self.node_id]

    # -- subscriptions (the session already updated its own view) ---------------------------
    def subscribe(self, session: Any, channel: bytes) -> None:
        self.channels.setdefault(channel, {})[session] = None

    def unsubscribe(self, session: Any, channel: bytes) -> None:
        _discard(self.channels, channel, session)

    def psubscribe(self, session: Any, pattern: bytes) -> None:
        entry = self.patterns.get(pattern)
        if entry is None:
            entry = self.patterns[pattern] = (self.matcher_factory(pattern), {})
        entry[1][session] = None

    def punsubscribe(self, session: Any, pattern: bytes) -> None:
        entry = self.patterns.get(pattern)
        if entry is not None:
            entry[1].pop(session, None)
            if not entry[1]:
                del self.patterns[pattern]

    def ssubscribe(self, session: Any, channel: bytes) -> None:
        self.shard_channels.setdefault(channel, {})[session] = None

    def sunsubscribe(self, session: Any, channel: bytes) -> None:
        _discard(self.shard_channels, channel, session)

    def drop(self, session: Any) -> None:
        """The session reset or closed: forget everything it listened to."""
        subs = session.pubsub
        for channel in subs.channels:
            self.unsubscribe(session, channel)
        for pattern in subs.patterns:
            self.punsubscribe(session, pattern)
        for channel in subs.shard:
            self.sunsubscribe(session, channel)

    def redirect(self, slot: int, tls: bool) -> str | None:
        """None if this node's shard owns ``slot``; else where SSUBSCRIBE belongs."""
        shard = self.shard_of_slot(slot)
        return None if shard == self.shard else self.redirect_to(shard, tls)

    # -- publishing -----------------------------------------------------------------------------
    def publish(self, channel: bytes, payload: bytes) -> int:
        """PUBLISH: this node's receivers (what Redis Cluster answers too)."""
        _check_size(channel, payload)
        self.published += 1
        return self.publish_local_and_broadcast(channel, payload)

    def publish_local_and_broadcast(self, channel: bytes, payload: bytes) -> int:
        """Deliver to this node's subscribers and send to every other node;
        for server code too (keyspace notifications). Returns the local count."""
        if len(channel) + len(payload) > MAX_PAYLOAD_BYTES:
            log.warning("not broadcasting a %d-byte pub/sub message: more than a peer frame holds",
                        len(channel) + len(payload))
        else:
            msg = PubsubPublish(self.node_id, GLOBAL, channel, payload)
            for node in self.others:
                self.send(node, msg)
        return self.publish_local(channel, payload)

    def spublish(self, channel: bytes, payload: bytes) -> int:
        """SPUBLISH: to the replicas of the shard that owns the channel's slot.

        On a node of another shard the message is forwarded to every replica
        of the owning shard and the answer is 0: Redis Cluster would answer
        MOVED, but makodb serves any key on any node (never MOVED for data,
        docs/ARCHITECTURE.md) and a publisher must not lose messages because
        it is not cluster-aware; the remote count would need a round trip per
        publish and be stale by the time it arrived, so 0 (nobody received it
        *here*) is the honest answer. Cluster clients route SPUBLISH to the
        owning shard and get its real local count.
        """
        _check_size(channel, payload)
        self.published += 1
        owner = self.shard_of_slot(key_slot(channel))
        msg = PubsubPublish(self.node_id, SHARDED, channel, payload)
        for node in self.replicas_by_shard[owner]:
            if node != self.node_id:
                self.send(node, msg)
        return self.deliver_shard(channel, payload) if owner == self.shard else 0

    def on_message(self, msg: PubsubPublish) -> None:
        """A publish from a peer: deliver it here."""
        self.received += 1
        if msg.kind == SHARDED:
            # Only if this node's shard owns it (a sender with a different
            # slot map is misconfigured; its message is not ours to deliver).
            if self.shard_of_slot(key_slot(msg.channel)) == self.shard:
                self.deliver_shard(msg.channel, msg.payload)
        else:
            self.publish_local(msg.channel, msg.payload)

    def publish_local(self, channel: bytes, payload: bytes) -> int:
        """Deliver to this node's channel and pattern subscribers; how many got it."""
        woken: list[Any] = []
        subscribers = self.channels.get(channel)
        if subscribers:
            wire = fmt.message(channel, payload)
            for session in subscribers:
                session.deliver(wire)
                woken.append(session)
        if self.patterns:
            for pattern, (matches, sessions) in list(self.patterns.items()):
                if matches(channel):
                    wire = fmt.pmessage(pattern, channel, payload)
                    for session in sessions:
                        session.deliver(wire)
                        woken.append(session)
        if woken:
            self.wake(woken)
        return len(woken)

    def deliver_shard(self, channel: bytes, payload: bytes) -> int:
        subscribers = self.shard_channels.get(channel)
        if not subscribers:
            return 0
        wire = fmt.smessage(channel, payload)
        woken = list(subscribers)
        for session in woken:
            session.deliver(wire)
        self.wake(woken)
        return len(woken)

    # -- PUBSUB and INFO ----------------------------------------------------------------------
    def channel_names(self, pattern: bytes | None, shard: bool) -> list[bytes]:
        names = list(self.shard_channels if shard else self.channels)
        if pattern is None:
            return names
        matches = self.matcher_factory(pattern)
        return [name for name in names if matches(name)]

    def numsub(self, channel: bytes, shard: bool) -> int:
        return len((self.shard_channels if shard else self.channels).get(channel, ()))

    def numpat(self) -> int:
        return len(self.patterns)


def _discard(index: dict[bytes, dict[Any, None]], channel: bytes, session: Any) -> None:
    sessions = index.get(channel)
    if sessions is not None:
        sessions.pop(session, None)
        if not sessions:
            del index[channel]


def _check_size(channel: bytes, payload: bytes) -> None:
    if len(channel) + len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(TOO_LARGE)
