"""The peer handshake, sealed frames and message validation, without sockets."""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.core.messages import REGISTRY, Accept, to_wire
import makod.core.txn_messages  # noqa: F401  (registers the transaction messages)
import makod.core.requests  # noqa: F401
from makod.net.peer_auth import TAG_BYTES, Dialer, FrameReader, Listener, PeerAuthError
from makod.net.validate import BadPeerMessage, Validator

SECRET = b"0123456789abcdef0123456789abcdef"
# CI's bound; MAKODB_FUZZ_EXAMPLES=N runs longer (docs/TESTING.md records a long run).
FUZZ_EXAMPLES = int(os.environ.get("MAKODB_FUZZ_EXAMPLES", "600"))


def _pair(dialer_secret: bytes = SECRET) -> tuple[Dialer, Listener]:
    dialer, listener = Dialer(dialer_secret, 1, 0), Listener(SECRET, 0, {0, 1, 2})
    challenge = listener.on_hello(dialer.hello()[4:])
    listener.on_proof(dialer.on_challenge(challenge[4:])[4:])
    return dialer, listener


def _open_all(listener: Listener, wire: bytes) -> list[bytes]:
    reader = FrameReader(1 << 20, TAG_BYTES)
    reader.feed(wire)
    out = []
    while (frame := reader.pop()) is not None:
        out.append(listener.open(frame))
    return out


def test_handshake_then_sealed_frames_in_order():
    dialer, listener = _pair()
    wire = b"".join(dialer.seal(p) for p in (b"one", b"", b"three" * 1000))
    assert _open_all(listener, wire) == [b"one", b"", b"three" * 1000]


def test_wrong_secret_is_caught_by_both_sides():
    dialer, listener = Dialer(b"x" * 32, 1, 0), Listener(SECRET, 0, {0, 1})
    challenge = listener.on_hello(dialer.hello()[4:])
    with pytest.raises(PeerAuthError):
        dialer.on_challenge(challenge[4:])
    with pytest.raises(PeerAuthError):
        listener.on_proof(b"\0" * 32)


def test_unknown_or_own_id_is_refused():
    for bad_id in (0, 7):
        with pytest.raises(PeerAuthError):
            Listener(SECRET, 0, {0, 1}).on_hello(Dialer(SECRET, bad_id, 0).hello()[4:])


def test_reaching_the_wrong_node_is_detected():
    dialer, listener = Dialer(SECRET, 1, 2), Listener(SECRET, 0, {0, 1, 2})
    with pytest.raises(PeerAuthError, match="expected node 2"):
        dialer.on_challenge(listener.on_hello(dialer.hello()[4:])[4:])


def test_tampered_replayed_and_reordered_frames_fail():
    dialer, listener = _pair()
    a, b = dialer.seal(b"first"), dialer.seal(b"second")
    flipped = bytearray(a)
    flipped[6] ^= 1
    with pytest.raises(PeerAuthError):
        _open_all(listener, bytes(flipped))
    dialer, listener = _pair()
    a, b = dialer.seal(b"first"), dialer.seal(b"second")
    with pytest.raises(PeerAuthError):
        _open_all(listener, b + a)  # reordered
    dialer, listener = _pair()
    a = dialer.seal(b"first")
    with pytest.raises(PeerAuthError):
        _open_all(listener, a + a)  # replayed


def test_frame_limit():
    reader = FrameReader(100)
    reader.feed(b"\xff\xff\xff\xff")
    with pytest.raises(PeerAuthError):
        reader.pop()


def test_valid_messages_pass():
    v = Validator(2)
    msg = v.message(list(to_wire(Accept(1, 3, 515, 10, [b"a"], 9, 4))), 3)
    assert msg == Accept(1, 3, 515, 10, [b"a"], 9, 4)


_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 64) - 1), st.binary(max_size=20),
                  st.text(max_size=10), st.floats(allow_nan=False))
_values = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.integers(0, 5), inner,
                                                                                          max_size=3), max_leaves=20)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(code=st.sampled_from(sorted(REGISTRY) + [0, 999, "x"]), fields=st.lists(_values, max_size=11), src=st.integers(0, 3))
def test_any_decoded_object_is_a_message_or_bad_peer_message(code, fields, src):
    obj = msgpack.unpackb(msgpack.packb([code, *fields]), raw=False, strict_map_key=False)
    try:
        Validator(2).message(obj, src)
    except BadPeerMessage:
        pass


@settings(max_examples=max(1, FUZZ_EXAMPLES // 2), deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=8))
def test_listener_survives_any_bytes_before_the_handshake(chunks):
    listener, reader = Listener(SECRET, 0, {0, 1}), FrameReader(256)
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while (frame := reader.pop()) is not None:
                if listener.peer_id is None:
                    listener.on_hello(frame)
                else:
                    listener.on_proof(frame)
    except PeerAuthError:
        pass
    assert listener.key is None  # nobody got in without the secret


def test_a_ballot_naming_no_replica_is_refused():
    # CI once saw a member's fuzzed Prepare with ballot node 202 become the
    # known leader; every role-change log line then raised in the event loop.
    v = Validator(2, node_ids={0, 1, 2, 3})
    assert v.message(list(to_wire(Accept(1, 3, 515, 10, [b"a"], 9, 4))), 3).ballot == 515  # node 3
    for ballot in (512 + 202, 256 * 7 + 4):
        with pytest.raises(BadPeerMessage, match="ballot"):
            v.message(list(to_wire(Accept(1, 3, ballot, 10, [b"a"], 9, 4))), 3)
