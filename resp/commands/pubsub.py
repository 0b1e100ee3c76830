"""Pub/sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH, PUBSUB ...,
and sharded pub/sub SSUBSCRIBE SUNSUBSCRIBE SPUBLISH (Redis 7.0).

Subscriptions are the session's state (resp/pubsub.py); who listens to what
on this node, and carrying messages to the other nodes, is the host's hub
(``session.host.pubsub``, makod/net/pubsub_sync.py). Replies and counts are
this node's, as a Redis Cluster node's are: PUBLISH answers how many clients
of the receiving node got the message, PUBSUB CHANNELS/NUMSUB/NUMPAT/... list
this node's subscriptions.
"""

from __future__ import annotations

from typing import Any

from makod.kv.errors import CommandError
from makod.kv.hashslot import key_slot
from makod.kv.table import command, container, subcommand
from resp.replies import Push, Several, SimpleString

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"


def _hub(session: Any) -> Any:
    hub = getattr(session.host, "pubsub", None)
    if hub is None:
        raise CommandError("ERR pub/sub is not available on this server")
    return hub


# -- channels and patterns ---------------------------------------------------------------------
_SUB = "pubsub noscript loading stale"
_PUB = "pubsub loading stale fast may_replicate"


@command("subscribe", -2, _SUB, scope="session", group="pubsub", since="2.0.0",
         summary="Listens for messages published to channels.",
         complexity="O(N) where N is the number of channels to subscribe to.")
def subscribe(session: Any, argv: list[bytes]) -> Any:
    hub = _hub(session)
    subs = session.pubsub
    out = []
    for channel in argv[1:]:
        if channel not in subs.channels:
            subs.channels[channel] = None
            hub.subscribe(session, channel)
        out.append(Push([b"subscribe", channel, subs.count()]))
    return Several(out)


@command("unsubscribe", -1, _SUB, scope="session", group="pubsub", since="2.0.0",
         summary="Stops listening to messages posted to channels.",
         complexity="O(N) where N is the number of channels to unsubscribe.")
def unsubscribe(session: Any, argv: list[bytes]) -> Any:
    hub = getattr(session.host, "pubsub", None)
    subs = session.pubsub
    return _unsubscribe(argv, subs.channels, b"unsubscribe", subs.count,
                        (lambda ch: hub.unsubscribe(session, ch)) if hub is not None else None)


@command("psubscribe", -2, _SUB, scope="session", group="pubsub", since="2.0.0",
         summary="Listens for messages published to channels that match one or more patterns.",
         complexity="O(N) where N is the number of patterns to subscribe to.")
def psubscribe(session: Any, argv: list[bytes]) -> Any:
    hub = _hub(session)
    subs = session.pubsub
    out = []
    for pattern in argv[1:]:
        if pattern not in subs.patterns:
            subs.patterns[pattern] = None
            hub.psubscribe(session, pattern)
        out.append(Push([b"psubscribe", pattern, subs.count()]))
    return Several(out)


@command("punsubscribe", -1, _SUB, scope="session", group="pubsub", since="2.0.0",
         summary="Stops listening to messages published to channels that match one or more patterns.",
         complexity="O(N) where N is the number of patterns to unsubscribe.")
def punsubscribe(session: Any, argv: list[bytes]) -> Any:
    hub = getattr(session.host, "pubsub", None)
    subs = session.pubsub
    return _unsubscribe(argv, subs.patterns, b"punsubscribe", subs.count,
                        (lambda p: hub.punsubscribe(session, p)) if hub is not None else None)


def _unsubscribe(argv: list[bytes], mine: dict, kind: bytes, count: Any, forget: Any) -> Any:
    """Each named channel (all of them when none is named; a nil channel
    when there are none, as Redis answers), with the count left after it."""
    names = argv[1:] or list(mine)
    if not names:
        return Push([kind, None, count()])
    out = []
    for name in names:
        if name in mine:
            del mine[name]
            if forget is not None:
                forget(name)
        out.append(Push([kind, name, count()]))
    return Several(out)


@command("publish", 3, _PUB, scope="server", group="pubsub", since="2.0.0",
         summary="Posts a message to a channel.",
         complexity="O(N+M) where N is the number of clients subscribed to the receiving channel and M is the "
                    "total number of subscribed patterns (by any client).")
def publish(session: Any, argv: list[bytes]) -> Any:
    return _hub(session).publish(argv[1], argv[2])


# -- sharded pub/sub ----------------------------------------------------------------------------
@command("ssubscribe", -2, _SUB, scope="session", keys=(1, -1, 1), group="pubsub", since="7.0.0",
         summary="Listens for messages published to shard channels.",
         complexity="O(N) where N is the number of shard channels to subscribe to.")
def ssubscribe(session: Any, argv: list[bytes]) -> Any:
    hub = _hub(session)
    slots = {key_slot(channel) for channel in argv[1:]}
    if len(slots) > 1:
        raise CommandError(CROSSSLOT)
    slot = slots.pop()
    elsewhere = hub.redirect(slot, session.tls)
    if elsewhere is not None:  # another shard's channel: where Redis Cluster would send the client
        raise CommandError(f"MOVED {slot} {elsewhere}")
    subs = session.pubsub
    out = []
    for channel in argv[1:]:
        if channel not in subs.shard:
            subs.shard[channel] = None
            hub.ssubscribe(session, channel)
        out.append(Push([b"ssubscribe", channel, subs.shard_count()]))
    return Several(out)


@command("sunsubscribe", -1, _SUB, scope="session", keys=(1, -1, 1), group="pubsub", since="7.0.0",
         summary="Stops listening to messages posted to shard channels.",
         complexity="O(N) where N is the number of shard channels to unsubscribe.")
def sunsubscribe(session: Any, argv: list[bytes]) -> Any:
    hub = getattr(session.host, "pubsub", None)
    subs = session.pubsub
    return _unsubscribe(argv, subs.shard, b"sunsubscribe", subs.shard_count,
                        (lambda ch: hub.sunsubscribe(session, ch)) if hub is not None else None)


@command("spublish", 3, _PUB, scope="server", keys=(1, 1, 1), group="pubsub", since="7.0.0",
         summary="Post a message to a shard channel",
         complexity="O(N) where N is the number of clients subscribed to the receiving shard channel.")
def spublish(session: Any, argv: list[bytes]) -> Any:
    return _hub(session).spublish(argv[1], argv[2])


# -- PUBSUB ----------------------------------------------------------------------------------------
def _pattern_arg(argv: list[bytes]) -> bytes | None:
    if len(argv) > 3:
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                           f"'{argv[1].decode('utf-8', 'replace')}'. Try PUBSUB HELP.")
    return argv[2] if len(argv) == 3 else None


def _channels(session: Any, argv: list[bytes]) -> Any:
    return _hub(session).channel_names(_pattern_arg(argv), shard=False)


def _shardchannels(session: Any, argv: list[bytes]) -> Any:
    return _hub(session).channel_names(_pattern_arg(argv), shard=True)


def _numsub(session: Any, argv: list[bytes]) -> Any:
    hub = _hub(session)
    return [x for ch in argv[2:] for x in (ch, hub.numsub(ch, shard=False))]


def _shardnumsub(session: Any, argv: list[bytes]) -> Any:
    hub = _hub(session)
    return [x for ch in argv[2:] for x in (ch, hub.numsub(ch, shard=True))]


def _numpat(session: Any, argv: list[bytes]) -> Any:
    return _hub(session).numpat()


def _help(session: Any, argv: list[bytes]) -> Any:
    return [SimpleString(line) for line in (
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    )]


_PS = "pubsub loading stale"
container(
    "pubsub",
    scope="server",
    group="pubsub",
    summary="A container for Pub/Sub commands.",
    since="2.8.0",
    subcommands=[
        subcommand("pubsub", "channels", -2, _channels, _PS, scope="server", group="pubsub", since="2.8.0",
                   summary="Returns the active channels.", complexity="O(N) where N is the number of active channels"),
        subcommand("pubsub", "numsub", -2, _numsub, _PS, scope="server", group="pubsub", since="2.8.0",
                   summary="Returns a count of subscribers to channels.",
                   complexity="O(N) for the NUMSUB subcommand, where N is the number of requested channels"),
        subcommand("pubsub", "numpat", 2, _numpat, _PS, scope="server", group="pubsub", since="2.8.0",
                   summary="Returns a count of unique pattern subscriptions."),
        subcommand("pubsub", "shardchannels", -2, _shardchannels, _PS, scope="server", group="pubsub",
                   since="7.0.0", summary="Returns the active shard channels.",
                   complexity="O(N) where N is the number of active shard channels"),
        subcommand("pubsub", "shardnumsub", -2, _shardnumsub, _PS, scope="server", group="pubsub", since="7.0.0",
                   summary="Returns the count of subscribers of shard channels.",
                   complexity="O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels"),
        subcommand("pubsub", "help", 2, _help, "loading stale", scope="server", group="pubsub", since="6.2.0",
                   summary="Returns helpful text about the different subcommands."),
    ],
)
