"""Peer links over loopback sockets: a link the listener drops at once
(it does not know the dialer yet, as before MAKO TOPOLOGY RELOAD tells it
of an added replica or shard) keeps trying, and carries messages as soon
as the listener knows the dialer. Once, a connection dropped before the
dialer had taken it left the link waiting for a handshake forever
(makoctl cluster add-shard found it: a node never heard the new shard's
leader)."""

from __future__ import annotations

import asyncio
import socket

from makod.core.txn_messages import Watermark
from makod.net.peers import PeerTransport

SECRET = b"0123456789abcdef0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _refused_then_known(rounds: int) -> list[int]:
    """For each round, how many messages got through within 3 s of the
    listener learning of the dialer."""
    counts = []
    for _ in range(rounds):
        port_a, port_b = _free_port(), _free_port()
        got: list = []
        a = PeerTransport(0, "127.0.0.1", port_a, {0: ("127.0.0.1", port_a), 1: ("127.0.0.1", port_b)},
                          lambda m: None, secret=SECRET, num_shards=2)
        b = PeerTransport(1, "127.0.0.1", port_b, {1: ("127.0.0.1", port_b)}, got.append, secret=SECRET,
                          num_shards=2)
        await a.start()
        await b.start()
        try:
            msg = Watermark(0, 0, 0, 0, {}, 0, False, 0)
            for _ in range(15):  # refused: b does not know node 0
                a.send(1, msg)
                await asyncio.sleep(0.01)
            assert not got
            b.add_peer(0, "127.0.0.1", port_a)
            for _ in range(300):
                a.send(1, msg)
                await asyncio.sleep(0.01)
                if got:
                    break
            counts.append(len(got))
        finally:
            await a.close()
            await b.close()
    return counts


def test_a_link_refused_at_first_gets_through_once_the_peer_knows_us():
    counts = asyncio.run(_refused_then_known(20))
    assert all(counts), counts


def test_the_same_under_uvloop():
    """makod's own loop, where the race showed."""
    import uvloop

    counts = uvloop.run(_refused_then_known(20))
    assert all(counts), counts
