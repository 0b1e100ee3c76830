"""Authenticated peer links: a mutual HMAC challenge-response, then MAC'd frames.

No socket code here: the two sides are small state machines fed bytes, so
the handshake and the framing are tested without a network.

Handshake (each step one length-prefixed frame of at most HANDSHAKE_MAX_BYTES):

1. dialer -> listener: ``MAGIC | dialer id (2 B) | dialer nonce (16 B)``
2. listener -> dialer: ``MAGIC | listener id | listener nonce | proof_L``
3. dialer -> listener: ``proof_D``

with ``transcript = dialer id | listener id | dialer nonce | listener nonce``,
``proof_X = HMAC-SHA256(secret, label_X | transcript)`` (different labels, so
one side's proof is never the other's) and the link key
``HMAC-SHA256(secret, "session" | transcript)``. Each side checks the other's
proof in constant time and that the ids are the ones the config expects.

After it, every frame is ``length (4 B) | payload | tag (16 B)`` with
``tag = HMAC-SHA256(key, sequence number (8 B) | payload)[:16]``: a frame
cannot be forged, altered, replayed or reordered without the link closing.
Links carry messages one way (dialer to listener), so one counter suffices.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

MAGIC = b"MAKOPEER1"
NONCE_BYTES = 16
TAG_BYTES = 16
HANDSHAKE_MAX_BYTES = 256
_LEN = struct.Struct(">I")
_ID = struct.Struct(">H")
_SEQ = struct.Struct(">Q")
_LABEL_LISTENER = b"makodb listener proof"
_LABEL_DIALER = b"makodb dialer proof"
_LABEL_SESSION = b"makodb session"


class PeerAuthError(Exception):
    """The other side is not a member of this cluster, or broke the framing."""


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


class FrameReader:
    """Splits a byte stream into length-prefixed frames, one at a time (the
    caller may change ``max_bytes``/``tag_bytes`` between frames: the
    handshake's frames are small and untagged, the link's are not)."""

    def __init__(self, max_bytes: int, tag_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self.tag_bytes = tag_bytes
        self.buf = bytearray()
        self.pos = 0

    def feed(self, data: bytes) -> None:
        if self.pos and self.pos == len(self.buf):
            self.buf.clear()
            self.pos = 0
        self.buf += data

    def pop(self) -> bytes | None:
        """The next whole frame (payload and tag), None if it has not all arrived."""
        buf, pos = self.buf, self.pos
        if len(buf) - pos < 4:
            self._compact()
            return None
        (size,) = _LEN.unpack_from(buf, pos)
        if size > self.max_bytes:
            raise PeerAuthError(f"frame of {size} bytes (at most {self.max_bytes})")
        end = pos + 4 + size + self.tag_bytes
        if len(buf) < end:
            self._compact()
            return None
        self.pos = end
        return bytes(buf[pos + 4:end])

    def _compact(self) -> None:
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0

    @property
    def buffered(self) -> int:
        return len(self.buf) - self.pos


class _Side:
    def __init__(self, secret: bytes, my_id: int) -> None:
        if len(secret) < 16:
            raise ValueError("the cluster secret must be at least 16 bytes")
        self.secret = secret
        self.my_id = my_id
        self.nonce = os.urandom(NONCE_BYTES)
        self.key: bytes | None = None
        self.seq = 0

    def _derive(self, transcript: bytes) -> None:
        self.key = _mac(self.secret, _LABEL_SESSION + transcript)


class Dialer(_Side):
    """The connecting side; it will send messages once ``key`` is set."""

    def __init__(self, secret: bytes, my_id: int, peer_id: int) -> None:
        super().__init__(secret, my_id)
        self.peer_id = peer_id

    def hello(self) -> bytes:
        return frame(MAGIC + _ID.pack(self.my_id) + self.nonce)

    def on_challenge(self, data: bytes) -> bytes:
        """The listener's reply; returns our proof (framed). Raises PeerAuthError."""
        want = len(MAGIC) + 2 + NONCE_BYTES + 32
        if len(data) != want or not data.startswith(MAGIC):
            raise PeerAuthError("malformed challenge")
        at = len(MAGIC)
        (peer_id,) = _ID.unpack_from(data, at)
        nonce = data[at + 2:at + 2 + NONCE_BYTES]
        proof = data[at + 2 + NONCE_BYTES:]
        if peer_id != self.peer_id:
            raise PeerAuthError(f"expected node {self.peer_id}, reached node {peer_id}")
        transcript = _ID.pack(self.my_id) + _ID.pack(peer_id) + self.nonce + nonce
        if not hmac.compare_digest(proof, _mac(self.secret, _LABEL_LISTENER + transcript)):
            raise PeerAuthError("the listener does not know the cluster secret")
        self._derive(transcript)
        return frame(_mac(self.secret, _LABEL_DIALER + transcript))

    def seal(self, payload: bytes) -> bytes:
        assert self.key is not None, "sealing before the handshake finished"
        tag = _mac(self.key, _SEQ.pack(self.seq) + payload)[:TAG_BYTES]
        self.seq += 1
        return _LEN.pack(len(payload)) + payload + tag


class Listener(_Side):
    """The accepting side: learns who dialed, then opens sealed frames."""

    def __init__(self, secret: bytes, my_id: int, known_ids: set[int]) -> None:
        super().__init__(secret, my_id)
        self.known_ids = known_ids
        self.peer_id: int | None = None
        self.transcript = b""

    def on_hello(self, data: bytes) -> bytes:
        if len(data) != len(MAGIC) + 2 + NONCE_BYTES or not data.startswith(MAGIC):
            raise PeerAuthError("malformed hello")
        (peer_id,) = _ID.unpack_from(data, len(MAGIC))
        if peer_id not in self.known_ids or peer_id == self.my_id:
            raise PeerAuthError(f"node id {peer_id} is not another member of this cluster")
        self.peer_id = peer_id
        their_nonce = data[len(MAGIC) + 2:]
        self.transcript = _ID.pack(peer_id) + _ID.pack(self.my_id) + their_nonce + self.nonce
        proof = _mac(self.secret, _LABEL_LISTENER + self.transcript)
        return frame(MAGIC + _ID.pack(self.my_id) + self.nonce + proof)

    def on_proof(self, data: bytes) -> None:
        if not self.transcript:
            raise PeerAuthError("proof before hello")
        if not hmac.compare_digest(data, _mac(self.secret, _LABEL_DIALER + self.transcript)):
            raise PeerAuthError(f"node {self.peer_id} does not know the cluster secret")
        self._derive(self.transcript)

    def open(self, sealed: bytes) -> bytes:
        """``sealed`` is a frame's payload and tag (FrameReader with tag_bytes=TAG_BYTES)."""
        assert self.key is not None
        payload, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
        want = _mac(self.key, _SEQ.pack(self.seq) + payload)[:TAG_BYTES]
        if not hmac.compare_digest(tag, want):
            raise PeerAuthError(f"frame {self.seq} from node {self.peer_id} failed its authentication tag")
        self.seq += 1
        return payload
