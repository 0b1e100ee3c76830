"""One session's pub/sub: its subscriptions and the wire form of what it gets.

The node's hub (makod/net/pubsub_sync.py) knows which sessions listen to
what and hands each a message already encoded for its protocol
(``Wire``); the session writes it in order with its replies
(``Session.deliver``). This module knows nothing of nodes or peers.

As in Redis 7.0:

* a RESP2 client with any subscription (channel, pattern or shard channel)
  is in subscribed mode: only ``ALLOWED_WHEN_SUBSCRIBED`` may run; a RESP3
  client may run anything, its messages being push replies;
* the count in a (P)(UN)SUBSCRIBE confirmation is channels + patterns, the
  count in an S(UN)SUBSCRIBE one is shard channels.
"""

from __future__ import annotations

from typing import Any

from resp.replies import Push, encode

ALLOWED_WHEN_SUBSCRIBED = frozenset(
    {"ping", "subscribe", "ssubscribe", "unsubscribe", "sunsubscribe", "psubscribe", "punsubscribe", "quit", "reset"}
)


def not_allowed_text(name: str) -> str:
    return (f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
            "are allowed in this context")


class Subscriptions:
    """What one session listens to (insertion-ordered sets)."""

    __slots__ = ("channels", "patterns", "shard")

    def __init__(self) -> None:
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard: dict[bytes, None] = {}

    @property
    def active(self) -> bool:
        return bool(self.channels or self.patterns or self.shard)

    def count(self) -> int:
        """Redis's clientSubscriptionsCount: channels and patterns."""
        return len(self.channels) + len(self.patterns)

    def shard_count(self) -> int:
        return len(self.shard)


class Wire:
    """One message, encoded at most once per protocol however many sessions get it."""

    __slots__ = ("items", "_by_proto")

    def __init__(self, items: list) -> None:
        self.items = items
        self._by_proto: dict[int, bytes] = {}

    def for_proto(self, proto: int) -> bytes:
        data = self._by_proto.get(proto)
        if data is None:
            data = self._by_proto[proto] = encode(Push(self.items), proto)
        return data


def message(channel: bytes, payload: bytes) -> Wire:
    return Wire([b"message", channel, payload])


def pmessage(pattern: bytes, channel: bytes, payload: bytes) -> Wire:
    return Wire([b"pmessage", pattern, channel, payload])


def smessage(channel: bytes, payload: bytes) -> Wire:
    return Wire([b"smessage", channel, payload])


def acl_channels(name: str, argv: list[bytes]) -> tuple[list[bytes], bool] | None:
    """The channels a command needs ACL permission for (``&pattern`` rules),
    and whether they are patterns (which must equal an allowed pattern, as in
    Redis's ACLCheckChannelAgainstList); None: no channel check."""
    if name in ("publish", "spublish"):
        return argv[1:2], False
    if name in ("subscribe", "ssubscribe"):
        return argv[1:], False
    if name == "psubscribe":
        return argv[1:], True
    return None


def channel_allowed(acl: Any, user: Any, channel: bytes, is_pattern: bool) -> bool:
    if is_pattern:
        return b"*" in user.channel_patterns or channel in user.channel_patterns
    return acl.channel_ok(user, channel)
