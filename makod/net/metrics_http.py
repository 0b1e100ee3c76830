"""The node's Prometheus endpoint: ``GET /metrics`` over plain HTTP/1.1.

Only that one request, so a few lines on the event loop rather than an HTTP
framework (prometheus-client's own server runs in a thread, where the node's
state would be read while the loop changes it). Bounded: request head at most
8 KB, read within 5 s, at most 16 connections at once; each connection
answers one request and closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable


log = logging.getLogger("makod.metrics")

MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 16
# The text exposition format every Prometheus version reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


class MetricsServer:
    def __init__(self, render: Callable[[], bytes]) -> None:
        self.render = render
        self.open = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> bool:
        """Listen; a port that cannot be bound is logged, not fatal (the
        database serves without its metrics)."""
        try:
            self.server = await asyncio.start_server(self._serve, host, port)
        except OSError as exc:
            log.error("metrics endpoint not started on %s:%d: %s", host, port, exc.strerror or exc)
            return False
        log.info("metrics on http://%s:%d/metrics", host, port)
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= MAX_CONNECTIONS:
            writer.close()
            return
        self.open += 1
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            except asyncio.LimitOverrunError:
                writer.write(_response("431 Request Header Fields Too Large", b"request head too large\n"))
                return
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                return
            if len(head) > MAX_HEAD_BYTES:
                writer.write(_response("431 Request Header Fields Too Large", b"request head too large\n"))
                return
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
                writer.write(_response("400 Bad Request", b"bad request line\n"))
            elif parts[0] not in (b"GET", b"HEAD"):
                writer.write(_response("405 Method Not Allowed", b"GET /metrics\n"))
            elif parts[1].split(b"?", 1)[0] != b"/metrics":
                writer.write(_response("404 Not Found", b"see /metrics\n"))
            else:
                body = self.render()
                response = _response("200 OK", body, CONTENT_TYPE)
                writer.write(response[: len(response) - len(body)] if parts[0] == b"HEAD" else response)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
