"""The real server's script guard: -BUSY for other clients, and SCRIPT KILL.

A script runs on the event loop's thread (it is one transaction of the node's
pure core), so while it runs the loop reads no socket. Redis in that state
answers every other client ``-BUSY`` once the script has run for
``busy-reply-threshold`` and accepts SCRIPT KILL / FUNCTION KILL. This guard
does the same from a side thread that starts only past the threshold: it
reads the sockets of idle plain-TCP clients (no reply pending, nothing
buffered, so replies stay in order), parses with each client's own session
parser (a command cut in two stays half-parsed there, and the session goes
on from it when the loop resumes), and answers each whole command: a KILL
sets a flag that the engine's instruction hook sees (``check`` raises
``Abort``: everything the script wrote is undone); anything else gets
``-BUSY``. It also accepts new plain-TCP connections (so an operator's
``redis-cli SCRIPT KILL`` gets through), which may AUTH first; they are
handed to the event loop when the script ends. Clients with replies
pending and TLS clients wait until the script ends. Peers wait too: a leader busy past its election
timeout loses its lease and its followers elect another, and the protocol
rolls back what the deposed leader installed but could not replicate.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from makod.kv import errors
from makod.kv.errors import Abort
from makod.kv.scripting.guard import ScriptGuard
from resp.protocol import RequestParser

if TYPE_CHECKING:
    from makod.server import Node

log = logging.getLogger("makod.script")

POLL_S = 0.05
READ_CHUNK = 64 * 1024


class BusyGuard(ScriptGuard):
    def __init__(self, node: "Node") -> None:
        self.node = node
        self.kind = ""
        self.name = ""
        self.started = 0.0
        self.killed = False
        self.responder: _Responder | None = None
        self.depth = 0

    def begin(self, kind: str, name: str) -> None:
        self.depth += 1
        if self.depth > 1:
            return  # a rerun inside the same call chain keeps the first start
        self.kind, self.name = kind, name
        self.started = time.monotonic()
        self.killed = False

    def check(self) -> None:
        if self.killed:
            raise Abort("script killed", errors.SCRIPT_KILLED)
        if self.responder is None:
            threshold_ms = self.node.cfg.busy_reply_threshold_ms
            if threshold_ms and (time.monotonic() - self.started) * 1000 >= threshold_ms:
                log.warning("script %s has run for %d ms: answering other clients BUSY until it ends or is "
                            "killed", self.name, threshold_ms)
                self.responder = _Responder(self, list(self.node.clients.values()))
                self.responder.start()

    def end(self) -> None:
        self.depth = max(0, self.depth - 1)
        if self.depth:
            return
        responder, self.responder = self.responder, None
        if responder is not None:
            responder.stop()
            log.warning("script %s ended after %.0f ms%s", self.name, (time.monotonic() - self.started) * 1000,
                        " (killed)" if self.killed else "")

    def kill(self, kind: str) -> bytes:
        """A KILL read by the responder: the reply to send."""
        if kind != self.kind:
            return b"-" + (errors.BUSY_FUNCTION if self.kind == "function" else errors.BUSY_SCRIPT).encode() + b"\r\n"
        self.killed = True
        return b"+OK\r\n"


class _Fresh:
    """A connection accepted while the script runs."""

    def __init__(self, sock: socket.socket, authenticated: bool) -> None:
        self.sock = sock
        self.parser = RequestParser()
        self.authenticated = authenticated


class _Responder(threading.Thread):
    def __init__(self, guard: BusyGuard, clients: list) -> None:
        super().__init__(name="script-busy", daemon=True)
        self.guard = guard
        self.clients = clients
        self.wake_r, self.wake_w = os.pipe()
        self.stopping = False
        self.listeners: dict[int, socket.socket] = {}
        self.fresh: dict[int, _Fresh] = {}
        server = guard.node.server
        for sock in (server.sockets if server is not None else ()):
            try:
                own = socket.socket(fileno=os.dup(sock.fileno()))
                own.setblocking(False)
                self.listeners[own.fileno()] = own
            except OSError:
                pass

    def stop(self) -> None:
        self.stopping = True
        os.write(self.wake_w, b"x")
        self.join()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for own in self.listeners.values():
            own.close()
        self._hand_over()

    def _hand_over(self) -> None:
        """Connections accepted meanwhile become ordinary clients (or are
        closed if they left a command half sent: its start is gone)."""
        node = self.guard.node
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        from makod.net.resp_server import ClientProtocol

        for fresh in self.fresh.values():
            if loop is None or fresh.parser.buffered:
                fresh.sock.close()
                continue
            loop.create_task(loop.connect_accepted_socket(lambda: ClientProtocol(node), fresh.sock))
        self.fresh = {}

    def _idle_fds(self) -> dict[int, Any]:
        fds = {}
        for proto in self.clients:
            session, transport = proto.session, proto.transport
            if session is None or transport is None or transport.is_closing() or session.closing:
                continue
            if session._slots or session.has_output or session.tls or transport.get_write_buffer_size():
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                fds[sock.fileno()] = proto
        return fds

    def run(self) -> None:
        fds = self._idle_fds()
        busy = (errors.BUSY_FUNCTION if self.guard.kind == "function" else errors.BUSY_SCRIPT).encode()
        while not self.stopping:
            try:
                readable, _, _ = select.select([self.wake_r, *fds, *self.listeners, *self.fresh], [], [], POLL_S)
            except (OSError, ValueError):
                return
            for fd in readable:
                if fd == self.wake_r:
                    continue
                if fd in self.listeners:
                    self._accept(self.listeners[fd])
                    continue
                fresh = self.fresh.get(fd)
                try:
                    data = os.read(fd, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if fresh is not None:
                    if not data:
                        fresh.sock.close()
                        del self.fresh[fd]
                    else:
                        self._write(fd, self._answer_fresh(fresh, data, busy))
                    continue
                if not data:
                    del fds[fd]  # closed: the loop sees the EOF again when it resumes
                    continue
                self._write(fd, self._answer(fds[fd].session, data, busy))

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _addr = listener.accept()
        except OSError:
            return
        if len(self.fresh) >= 64:  # bounded: the rest wait in the backlog
            sock.close()
            return
        sock.setblocking(False)
        self.fresh[sock.fileno()] = _Fresh(sock, self._default_open())

    def _default_open(self) -> bool:
        acl = getattr(self.guard.node, "acl", None)
        user = acl.users.get("default") if acl is not None else None
        return user is not None and user.enabled and user.nopass

    def _answer(self, session: Any, data: bytes, busy: bytes) -> bytes:
        return b"".join(self._reply(argv, session.authenticated, busy) for argv in session.parser.feed(data))

    def _answer_fresh(self, fresh: _Fresh, data: bytes, busy: bytes) -> bytes:
        out = []
        for argv in fresh.parser.feed(data):
            if argv[0].lower() == b"auth" and len(argv) in (2, 3):
                ok = self._password_ok(argv[1] if len(argv) == 3 else b"default", argv[-1])
                fresh.authenticated = fresh.authenticated or ok
                out.append(b"+OK\r\n" if ok else b"-" + errors.WRONGPASS.encode() + b"\r\n")
            else:
                out.append(self._reply(argv, fresh.authenticated, busy))
        return b"".join(out)

    def _password_ok(self, username: bytes, password: bytes) -> bool:
        acl = getattr(self.guard.node, "acl", None)
        if acl is None:
            required = self.guard.node.requirepass
            return username == b"default" and (required is None or hmac.compare_digest(password, required.encode()))
        user = acl.users.get(username.decode("utf-8", "surrogateescape"))
        return user is not None and user.enabled and user.check_password(password)

    def _reply(self, argv: list[bytes], authenticated: bool, busy: bytes) -> bytes:
        name = b" ".join(a.lower() for a in argv[:2])
        if name in (b"script kill", b"function kill") and len(argv) == 2:
            if not authenticated:
                return b"-" + errors.NOAUTH.encode() + b"\r\n"
            return self.guard.kill("eval" if argv[0].lower() == b"script" else "function")
        return b"-" + busy + b"\r\n"

    def _write(self, fd: int, payload: bytes) -> None:
        deadline = time.monotonic() + 1.0
        while payload and time.monotonic() < deadline:
            try:
                sent = os.write(fd, payload)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return
            payload = payload[sent:]
