"""Replica-to-replica transport: msgpack-encoded messages over TCP.

Each node listens on its peer port and keeps one outgoing link per peer,
reconnecting with backoff. Messages are fire-and-forget: Paxos retransmits
what matters, so a link that is down drops messages rather than hoarding
them (the queue of a link is bounded in bytes). An optional one-way delay per
destination emulates a WAN for benchmarks; messages on one link keep their
order because they all wait the same time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import msgpack

from makod.codec import pack

from makod.core.messages import Message, from_wire, to_wire

log = logging.getLogger("makod.peers")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_QUEUED_BYTES = 64 * 1024 * 1024
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 1.0


def pack_message(msg: Message) -> bytes:
    return pack(to_wire(msg))


class _InboundProtocol(asyncio.Protocol):
    def __init__(self, deliver: Callable[[Message], None]) -> None:
        self.deliver = deliver
        self.unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=MAX_MESSAGE_BYTES
        )
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
            for obj in self.unpacker:
                self.deliver(from_wire(obj))
        except Exception as exc:  # a corrupt or hostile peer stream: drop the connection
            log.warning("dropping peer connection: %s", exc)
            if self.transport is not None:
                self.transport.close()


class _OutboundProtocol(asyncio.Protocol):
    """Outgoing side: we only write; the protocol exists to learn of a lost connection."""

    def __init__(self, link: "_Link") -> None:
        self.link = link

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.closed()


class _Link:
    """The outgoing side towards one peer."""

    def __init__(self, transport_owner: "PeerTransport", peer: int, host: str, port: int, delay_s: float) -> None:
        self.owner = transport_owner
        self.peer = peer
        self.host = host
        self.port = port
        self.delay_s = delay_s
        self.writer: asyncio.Transport | None = None
        self.connecting = False
        self.backoff = RECONNECT_MIN_S
        self.queued: list[bytes] = []
        self.queued_bytes = 0
        self.sent = 0
        self.dropped = 0

    def send(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)
            self.sent += 1
            return
        if self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            self.dropped += 1
            return
        self.queued.append(data)
        self.queued_bytes += len(data)
        self.connect()

    def connect(self) -> None:
        if self.connecting or self.owner.closed:
            return
        self.connecting = True
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _OutboundProtocol(self), self.host, self.port
            )
        except OSError:
            self.connecting = False
            # Drop what queued up: by the time the peer is back it is stale.
            self.dropped += len(self.queued)
            self.queued, self.queued_bytes = [], 0
            loop.call_later(self.backoff, self.connect_if_needed)
            self.backoff = min(self.backoff * 2, RECONNECT_MAX_S)
            return
        self.connecting = False
        self.backoff = RECONNECT_MIN_S
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writer = transport  # type: ignore[assignment]
        if self.queued:
            transport.write(b"".join(self.queued))  # type: ignore[attr-defined]
            self.sent += len(self.queued)
            self.queued, self.queued_bytes = [], 0

    def connect_if_needed(self) -> None:
        if self.writer is None and self.queued:
            self.connect()

    def closed(self) -> None:
        self.writer = None


class PeerTransport:
    def __init__(
        self,
        node_id: int,
        bind: str,
        port: int,
        peers: dict[int, tuple[str, int]],
        deliver: Callable[[Message], None],
        delay_ms: Callable[[int], float] | None = None,
    ) -> None:
        self.node_id = node_id
        self.bind = bind
        self.port = port
        self.deliver = deliver
        self.closed = False
        self.server: asyncio.AbstractServer | None = None
        self.links = {
            peer: _Link(self, peer, host, p, (delay_ms(peer) if delay_ms else 0.0) / 1000.0)
            for peer, (host, p) in peers.items()
            if peer != node_id
        }

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _InboundProtocol(self.deliver), self.bind, self.port, reuse_address=True
        )

    def send(self, peer: int, msg: Message) -> None:
        if peer == self.node_id:
            self.deliver(msg)
            return
        link = self.links[peer]
        data = pack_message(msg)
        if link.delay_s > 0:
            asyncio.get_running_loop().call_later(link.delay_s, link.send, data)
        else:
            link.send(data)

    def stats(self) -> dict[int, dict[str, int]]:
        return {peer: {"sent": l.sent, "dropped": l.dropped, "connected": int(l.writer is not None)} for peer, l in self.links.items()}

    async def close(self) -> None:
        self.closed = True
        for link in self.links.values():
            if link.writer is not None:
                link.writer.close()
        if self.server is not None:
            self.server.close()
