"""Replica-to-replica transport: msgpack-encoded messages over authenticated TCP links.

Every link starts with peer_auth's mutual challenge-response on the cluster
secret; after it each message travels in a sealed frame and is validated
(validate.py) before it reaches the node. Anything else closes the link.

Each node listens on its peer port and keeps one outgoing link per peer,
reconnecting with backoff. Messages are fire-and-forget: Paxos retransmits
what matters, so a link that is down drops messages rather than hoarding
them (the queue of a link is bounded in bytes). An optional one-way delay per
message (the config's link model, with jitter) emulates a WAN for
benchmarks; messages on one link still leave in the order they were sent,
as TCP would deliver them (links.FifoRelease).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import deque
from typing import Callable

import msgpack

from makod.codec import pack
from makod.links import FifoRelease

from makod.core.messages import Message, to_wire
from makod.net.peer_auth import HANDSHAKE_MAX_BYTES, TAG_BYTES, Dialer, FrameReader, Listener, PeerAuthError
from makod.net.validate import BadPeerMessage, Validator

log = logging.getLogger("makod.peers")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_QUEUED_BYTES = 64 * 1024 * 1024
# A link writes what one loop iteration sent it in one write, or at once past this many bytes.
OUT_BATCH_BYTES = 256 * 1024
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 1.0
HANDSHAKE_TIMEOUT_S = 5.0


def pack_message(msg: Message) -> bytes:
    return pack(to_wire(msg))


class _InboundProtocol(asyncio.Protocol):
    """One peer's incoming link: handshake, then sealed, validated messages."""

    def __init__(self, owner: "PeerTransport") -> None:
        self.owner = owner
        self.auth = Listener(owner.secret, owner.node_id, owner.known_ids)
        self.reader = FrameReader(HANDSHAKE_MAX_BYTES)
        self.authenticated = False
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        owner = self.owner
        if len(owner.inbound) >= owner.max_inbound:
            log.warning("refusing a peer connection: %d already open", len(owner.inbound))
            transport.close()
            return
        owner.inbound.add(self)
        self.deadline = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT_S, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.inbound.discard(self)
        if self.deadline is not None:
            self.deadline.cancel()

    def _handshake_timeout(self) -> None:
        if not self.authenticated:
            self._drop("no handshake within %.0f s" % HANDSHAKE_TIMEOUT_S)

    def _drop(self, why: str) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        log.warning("dropping peer connection from %s (node %s): %s", peer, self.auth.peer_id, why)
        self.owner.rejected += 1
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        try:
            self.reader.feed(data)
            while self.transport is not None:
                payload = self.reader.pop()
                if payload is None:
                    return
                if self.authenticated:
                    self._message(self.auth.open(payload))
                elif self.auth.peer_id is None:
                    self.transport.write(self.auth.on_hello(payload))
                else:
                    self.auth.on_proof(payload)
                    self.authenticated = True
                    self.reader.max_bytes = MAX_MESSAGE_BYTES
                    self.reader.tag_bytes = TAG_BYTES
        except (PeerAuthError, BadPeerMessage) as exc:
            self._drop(str(exc))

    def _message(self, payload: bytes) -> None:
        try:
            obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several types
            raise BadPeerMessage(f"undecodable message: {type(exc).__name__}") from None
        self.owner.deliver(self.owner.validator.message(obj, self.auth.peer_id))


class _OutboundProtocol(asyncio.Protocol):
    """Outgoing side: the handshake's reply comes back here; after it we only write."""

    def __init__(self, link: "_Link") -> None:
        self.link = link
        self.auth = Dialer(link.owner.secret, link.owner.node_id, link.peer)
        self.reader = FrameReader(HANDSHAKE_MAX_BYTES)
        self.transport: asyncio.Transport | None = None
        self.lost = False  # connection_lost came (perhaps before _connect took this protocol)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.auth.hello())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.auth.key is not None or self.transport is None:
            return  # the listener never speaks after the handshake
        try:
            self.reader.feed(data)
            payload = self.reader.pop()
            if payload is None:
                return
            self.transport.write(self.auth.on_challenge(payload))
        except PeerAuthError as exc:
            log.warning("peer link to node %d: %s", self.link.peer, exc)
            self.transport.abort()
            return
        self.link.ready(self.transport, self.auth)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.link.closed(self)


class _Link:
    """The outgoing side towards one peer."""

    def __init__(self, transport_owner: "PeerTransport", peer: int, host: str, port: int) -> None:
        self.owner = transport_owner
        self.peer = peer
        self.host = host
        self.port = port
        # Messages held back by the emulated WAN, in send order: (release ms, data).
        # One timer for the head, not one per message: asyncio does not keep
        # timers with equal deadlines in order, and FIFO is the point.
        self.held: deque[tuple[float, bytes]] = deque()
        self.held_bytes = 0
        self.fifo = FifoRelease()
        self.timer: asyncio.TimerHandle | None = None
        self.writer: asyncio.Transport | None = None
        self.sealer: Dialer | None = None
        self.protocol: _OutboundProtocol | None = None
        self.connecting = False
        self.backoff = RECONNECT_MIN_S
        self.queued: list[bytes] = []
        self.queued_bytes = 0
        # Messages of this loop iteration, written together at its end: one
        # write (and one wakeup of the peer) instead of one per message. A
        # pump sends a peer several at once (accepts, commits, watermarks).
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.out_scheduled = False
        self.sent = 0
        self.dropped = 0

    def send(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.out.append(data)
            self.out_bytes += len(data)
            if self.out_bytes >= OUT_BATCH_BYTES:
                self._write_out()  # (a snapshot's stream) no need to wait: it is a batch already
            elif not self.out_scheduled:
                self.out_scheduled = True
                self.owner.to_write(self)
            return
        self._queue(data)

    def _write_out(self) -> None:
        self.out_scheduled = False
        out, self.out, self.out_bytes = self.out, [], 0
        if not out:
            return
        if self.writer is not None and not self.writer.is_closing():
            sealer = self.sealer
            self.writer.write(b"".join([sealer.seal(data) for data in out]))
            self.sent += len(out)
            return
        for data in out:  # the link went down meanwhile: as if sent just after
            self._queue(data)

    def _queue(self, data: bytes) -> None:
        if self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            self.dropped += 1
            return
        self.queued.append(data)
        self.queued_bytes += len(data)
        self.connect()

    def send_later(self, data: bytes, delay_ms: float) -> None:
        if self.held_bytes + len(data) > MAX_QUEUED_BYTES:
            self.dropped += 1  # fire-and-forget, as when the link is down
            return
        loop = asyncio.get_running_loop()
        self.held.append((self.fifo.release_at(loop.time() * 1000, delay_ms), data))
        self.held_bytes += len(data)
        if self.timer is None:
            self.timer = loop.call_at(self.held[0][0] / 1000, self._release)

    def _release(self) -> None:
        self.timer = None
        loop = asyncio.get_running_loop()
        now_ms = loop.time() * 1000
        # The head is due (its timer fired, perhaps within the clock's
        # resolution of its time); the rest go when their time has come.
        first = True
        while self.held and (first or self.held[0][0] <= now_ms):
            first = False
            _, data = self.held.popleft()
            self.held_bytes -= len(data)
            self.send(data)
        if self.held and not self.owner.closed:
            self.timer = loop.call_at(self.held[0][0] / 1000, self._release)

    def connect(self) -> None:
        if self.connecting or self.owner.closed:
            return
        self.connecting = True
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        sock = None
        try:
            sock = self._socket()
            await asyncio.wait_for(loop.sock_connect(sock, (self.host, self.port)), HANDSHAKE_TIMEOUT_S)
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _OutboundProtocol(self), sock=sock,
                                       ssl=self.owner.ssl_client,
                                       server_hostname=self.host if self.owner.ssl_client else None),
                HANDSHAKE_TIMEOUT_S,
            )
        except (OSError, asyncio.TimeoutError):
            if sock is not None:
                sock.close()
            self._retry_later()
            return
        if protocol.lost:
            # The peer closed it before we got here (a listener that does not
            # know us yet drops us at once): closed() could not tell it was ours.
            self._retry_later()
            return
        # Connected; ``ready`` follows once the handshake is done. Until
        # then (and if it fails) the link counts as still connecting.
        self.protocol = protocol
        loop.call_later(HANDSHAKE_TIMEOUT_S, self._handshake_timeout, protocol)

    def _retry_later(self) -> None:
        self.connecting = False
        # Drop what queued up: by the time the peer is back it is stale.
        self.dropped += len(self.queued)
        self.queued, self.queued_bytes = [], 0
        asyncio.get_running_loop().call_later(self.backoff, self.connect_if_needed)
        self.backoff = min(self.backoff * 2, RECONNECT_MAX_S)

    def _socket(self) -> socket.socket:
        """A socket whose local port is no port of the config: an ephemeral port
        the kernel hands out could otherwise be a replica's own, and that
        replica could not start while the connection lasts."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(32):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            if sock.getsockname()[1] not in self.owner.reserved_ports:
                return sock
            sock.close()
        raise OSError("no free local port outside the cluster's ports")

    def _handshake_timeout(self, protocol: "_OutboundProtocol") -> None:
        if self.protocol is protocol and self.writer is None:
            log.warning("peer link to node %d: no handshake reply within %.0f s", self.peer, HANDSHAKE_TIMEOUT_S)
            if protocol.transport is not None and not protocol.lost:
                protocol.transport.abort()  # closed() follows, and tries again
            else:
                self.closed(protocol)

    def ready(self, transport: asyncio.Transport, sealer: Dialer) -> None:
        self.connecting = False
        self.backoff = RECONNECT_MIN_S
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writer, self.sealer = transport, sealer
        if self.queued:
            transport.write(b"".join(sealer.seal(data) for data in self.queued))
            self.sent += len(self.queued)
            self.queued, self.queued_bytes = [], 0

    def connect_if_needed(self) -> None:
        if self.writer is None and self.queued:
            self.connect()

    def closed(self, protocol: "_OutboundProtocol") -> None:
        if protocol is not self.protocol:
            return  # an older connection, or one _connect has not taken yet (it checks ``lost``)
        self.protocol = None
        self.writer = self.sealer = None
        # Not yet written: ahead of anything sent from now on.
        out, self.out, self.out_bytes = self.out, [], 0
        for data in out:
            self._queue(data)
        if self.connecting:  # the handshake failed: try again later, as after a refused connect
            self._retry_later()


class PeerTransport:
    def __init__(
        self,
        node_id: int,
        bind: str,
        port: int,
        peers: dict[int, tuple[str, int]],
        deliver: Callable[[Message], None],
        secret: bytes,
        num_shards: int,
        # The one-way delay (ms) for the next message to a peer, called per
        # message so that each may draw its own jitter; None: no delay.
        delay_ms: Callable[[int], float] | None = None,
        ssl_contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
        reserved_ports: set[int] | None = None,
    ) -> None:
        self.reserved_ports = reserved_ports or set()
        # Mutual TLS (listener side, dialer side) around the authenticated links, if configured.
        self.ssl_server, self.ssl_client = ssl_contexts if ssl_contexts else (None, None)
        self.node_id = node_id
        self.secret = secret
        self.known_ids = set(peers)
        # Kept as sets and changed in place: the validator and every
        # listener read them (add_peer, on MAKO TOPOLOGY RELOAD).
        self.ballot_ids = self.known_ids | {node_id}
        self.validator = Validator(num_shards, node_ids=self.ballot_ids)
        self.inbound: set[_InboundProtocol] = set()
        # Each peer needs one link (a reconnect may briefly overlap the old one).
        self.max_inbound = 2 * len(peers) + 8
        self.rejected = 0
        self.bind = bind
        self.port = port
        self.deliver = deliver
        self.closed = False
        # Links with messages not yet written (_Link.out): written by flush(),
        # which the server calls after each pump and tick, else at the end
        # of this loop iteration.
        self.unwritten: list[_Link] = []
        self.server: asyncio.AbstractServer | None = None
        self.delay_ms = delay_ms
        self.links = {
            peer: _Link(self, peer, host, p)
            for peer, (host, p) in peers.items()
            if peer != node_id
        }

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _InboundProtocol(self), self.bind, self.port, reuse_address=True,
            **({"ssl": self.ssl_server, "ssl_handshake_timeout": HANDSHAKE_TIMEOUT_S} if self.ssl_server else {}),
        )

    def add_peer(self, peer: int, host: str, port: int) -> None:
        """A replica joined the cluster (makoctl cluster add-replica): accept
        its links and reach it."""
        self.known_ids.add(peer)
        self.ballot_ids.add(peer)
        self.max_inbound += 2
        if peer != self.node_id and peer not in self.links:
            self.links[peer] = _Link(self, peer, host, port)

    def to_write(self, link: _Link) -> None:
        if not self.unwritten:
            asyncio.get_running_loop().call_soon(self.flush)
        self.unwritten.append(link)

    def flush(self) -> None:
        """Write every link's messages of this loop iteration, one write each."""
        links, self.unwritten = self.unwritten, []
        for link in links:
            link._write_out()

    def send(self, peer: int, msg: Message) -> None:
        if peer == self.node_id:
            self.deliver(msg)
            return
        link = self.links.get(peer)
        if link is None:
            return  # a replica this node has not heard of yet (or no longer knows)
        data = pack_message(msg)
        if len(data) > MAX_MESSAGE_BYTES:
            # The peer would drop the link on it, and a resent one again and
            # again: lose the one message instead (every protocol copes with
            # a lost message; the cores bound what they put in one).
            link.dropped += 1
            log.error("dropped a %s of %d bytes to node %d: larger than a peer frame may be (%d)",
                      type(msg).__name__, len(data), peer, MAX_MESSAGE_BYTES)
            return
        delay_ms = self.delay_ms(peer) if self.delay_ms is not None else 0.0
        if delay_ms > 0 or link.held:  # behind held messages even with no delay of its own
            link.send_later(data, delay_ms)
        else:
            link.send(data)

    def stats(self) -> dict[int, dict[str, int]]:
        return {peer: {"sent": l.sent, "dropped": l.dropped, "connected": int(l.writer is not None)} for peer, l in self.links.items()}

    async def close(self) -> None:
        self.closed = True
        for link in self.links.values():
            if link.timer is not None:
                link.timer.cancel()
                link.timer = None
            if link.protocol is not None and link.protocol.transport is not None:
                link.protocol.transport.close()
        for inbound in list(self.inbound):
            if inbound.transport is not None:
                inbound.transport.close()
        if self.server is not None:
            self.server.close()
