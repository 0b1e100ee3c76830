"""The asyncio side of a client connection: bytes in, bytes out, nothing more.

All Redis logic lives in resp.session.Session; this protocol moves bytes and
applies back-pressure: it stops reading while the session has too many
parsed commands waiting or while the socket's send buffer is full. It also
enforces Redis's per-client memory bounds: client-output-buffer-limit (a
client that does not read its replies is closed, not buffered for without
end) and client-query-buffer-limit (incomplete input), and the idle `timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from resp.session import Session

if TYPE_CHECKING:
    from makod.server import Node

MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"

log = logging.getLogger("makod.clients")


class ClientProtocol(asyncio.Protocol):
    def __init__(self, node: "Node") -> None:
        self.node = node
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None  # type: ignore[assignment]
        self.reading_paused = False
        self.writing_paused = False
        self.over_soft_since: float | None = None  # monotonic s when output passed the soft limit
        self.last_input = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        node = self.node
        if len(node.clients) >= node.maxclients:
            node.stats.rejected_connections += 1
            transport.write(MAX_CLIENTS_ERROR)  # type: ignore[attr-defined]
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        node.next_client_id += 1
        self.session = Session(
            node, node.next_client_id, f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}"
        )
        self.session.tls = transport.get_extra_info("ssl_object") is not None
        node.clients[self.session.id] = self
        node.stats.total_connections += 1

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            return
        self.last_input = time.monotonic()
        session.feed(data)
        if session.buffered_input > self.node.cfg.client_query_buffer_limit:
            self.close_for("closing client that reached max query buffer length "
                           f"({session.buffered_input} bytes)", "query")
            return
        if session.has_output or session.closing:
            self.flush()
        if not session.wants_input and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def flush(self) -> None:
        session = self.session
        transport = self.transport
        if session is None or transport is None or transport.is_closing():
            return
        data = session.take_output()
        if data or session.held_bytes:
            if data:
                transport.write(data)
            # Pub/sub messages held behind a pending reply count too (resp/session.py deliver).
            size = transport.get_write_buffer_size() + session.held_bytes
            if not size:
                self.over_soft_since = None  # all of it reached the kernel: no limit to check
            elif self.over_output_limit(size):
                return
        if session.finished:
            transport.close()
            return
        if self.reading_paused and session.wants_input and not self.writing_paused:
            self.reading_paused = False
            transport.resume_reading()

    def over_output_limit(self, size: int) -> bool:
        """Redis's client-output-buffer-limit: past the hard limit, or past the
        soft one for soft-seconds in a row, the client is closed."""
        kind = "pubsub" if getattr(self.session, "is_pubsub", False) else "normal"
        hard, soft, soft_s = self.node.cfg.client_output_buffer_limit[kind]
        now = time.monotonic()
        if soft and size > soft:
            if self.over_soft_since is None:
                self.over_soft_since = now
        else:
            self.over_soft_since = None
        if (hard and size > hard) or (self.over_soft_since is not None and now - self.over_soft_since >= soft_s):
            self.close_for(f"client scheduled to be closed ASAP for overcoming of output buffer limits "
                           f"({size} bytes, class {kind})", "output")
            return True
        return False

    def close_for(self, why: str, limit: str) -> None:
        session = self.session
        log.warning("client id=%s addr=%s: %s", session.id if session else "?", session.addr if session else "?", why)
        self.node.stats.limit_disconnections[limit] += 1
        if self.transport is not None:
            self.transport.abort()  # what is buffered is dropped: that is the point

    def idle_for(self, now: float) -> float:
        session = self.session
        if session is None or session.has_output or not session.wants_input:
            return 0.0
        return now - self.last_input

    def pause_writing(self) -> None:
        self.writing_paused = True
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.node.clients.pop(self.session.id, None)
            self.node.stats.closed_commands_processed += self.session.commands_processed
            self.session.closing = True
            self.session.drop_subscriptions()
            self.node.dirty.discard(self)
