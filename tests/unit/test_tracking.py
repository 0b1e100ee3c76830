"""Client-side caching's pure parts: the tracking table (resp/tracking.py)
and the peer protocol that never lets a node miss a change unnoticed
(makod/net/tracking_sync.py)."""

from __future__ import annotations

from makod.net.tracking_sync import (
    FORGET_MS, MAX_KEY_BYTES, TrackingAck, TrackingInterest, TrackingInvalidate, TrackingPeers,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.kv.errors import CommandError
from resp.tracking import ClientTracking, TrackingTable, _some_overlap, parse_tracking


class FakeSession:
    def __init__(self, cid: int, proto: int = 3) -> None:
        self.id, self.proto, self.closing, self.is_pubsub = cid, proto, False, False
        self.tracking = None
        self.got: list = []

    def deliver(self, wire) -> None:
        self.got.append(wire.items)


def _table(*sessions):
    by_id = {s.id: s for s in sessions}
    return TrackingTable(by_id.get, lambda woken: None)


def _on(table, session, *args: bytes):
    state = parse_tracking([b"CLIENT", b"TRACKING", b"ON", *args], session.tracking, lambda cid: True)
    table.enable(session, state)


def test_a_read_key_is_invalidated_once_then_forgotten():
    s = FakeSession(1)
    t = _table(s)
    _on(t, s)
    t.remember(s, [b"a", b"b"])
    t.invalidate([b"a", b"c"])
    assert s.got == [[b"invalidate", [b"a"]]]
    t.invalidate([b"a"])
    assert len(s.got) == 1 and t.items == 1 and list(t.keys) == [b"b"]


def test_bcast_prefixes_get_the_batch_under_them():
    s, other = FakeSession(1), FakeSession(2)
    t = _table(s, other)
    _on(t, s, b"BCAST", b"PREFIX", b"u:", b"PREFIX", b"o:")
    _on(t, other, b"BCAST")
    t.invalidate([b"u:1", b"x", b"u:2", b"o:9"])
    # One message per prefix, in the prefixes' sorted order (Redis walks a radix tree).
    assert s.got == [[b"invalidate", [b"o:9"]], [b"invalidate", [b"u:1", b"u:2"]]]
    assert other.got == [[b"invalidate", [b"u:1", b"x", b"u:2", b"o:9"]]]


def test_noloop_forgets_the_clients_own_writes_and_the_table_is_bounded():
    s = FakeSession(1)
    t = _table(s)
    t.max_keys = 3
    _on(t, s, b"NOLOOP")
    t.remember(s, [b"a"])
    t.forget(s, [b"a"])
    t.invalidate([b"a"])
    assert s.got == []
    t.remember(s, [b"k1", b"k2", b"k3", b"k4"])  # one past the limit: the oldest goes
    assert s.got == [[b"invalidate", [b"k1"]]] and len(t.keys) == 3


def test_redirect_to_a_gone_client_marks_it_broken():
    s = FakeSession(1)
    t = TrackingTable(lambda cid: None, lambda woken: None)
    state = ClientTracking()
    state.redirect = 7
    t.enable(s, state)
    t.remember(s, [b"k"])
    t.invalidate([b"k"])
    assert state.broken and s.got == [[b"tracking-redir-broken", 7]]


class Net:
    """Two nodes' TrackingPeers joined by a link that can drop messages."""

    def __init__(self) -> None:
        self.queue: list = []
        self.drop = False
        self.sessions = [FakeSession(1), FakeSession(1)]
        self.tables = [_table(self.sessions[0]), _table(self.sessions[1])]
        self.peers = [self._peers(0, 111), self._peers(1, 222)]

    def _peers(self, i: int, boot: int) -> TrackingPeers:
        return TrackingPeers(i, [1 - i], boot, self.tables[i], self._send(i), lambda: None)

    def _send(self, i: int):
        def send(node: int, msg) -> None:
            if not self.drop:
                self.queue.append((node, msg))
        return send

    def run(self) -> None:
        while self.queue:
            node, msg = self.queue.pop(0)
            p = self.peers[node]
            {TrackingInterest: p.on_interest, TrackingAck: p.on_ack, TrackingInvalidate: p.on_invalidate}[type(msg)](msg)

    def tick(self, now_ms: float) -> None:
        for p in self.peers:
            p.tick(now_ms)
        self.run()


def test_changes_cross_and_a_lost_message_means_a_flush():
    net = Net()
    reader = net.sessions[0]
    _on(net.tables[0], reader)
    net.tick(0)
    assert net.peers[1].wants_changes and net.peers[0].heard == {1: (222, 1)}
    net.tables[0].remember(reader, [b"a", b"b"])
    net.peers[1].on_changes([b"a"], False)
    net.run()
    assert reader.got == [[b"invalidate", [b"a"]]]
    net.drop = True  # a link that loses what it carries
    net.peers[1].on_changes([b"b"], False)
    net.drop = False
    assert reader.got == [[b"invalidate", [b"a"]]]
    net.tick(600)  # the next refresh's ack shows the gap
    assert reader.got[-1] == [b"invalidate", None] and net.peers[0].flushes == 1


def test_a_restarted_or_forgetful_peer_means_a_flush():
    net = Net()
    reader = net.sessions[0]
    _on(net.tables[0], reader)
    net.tick(0)
    net.tables[0].remember(reader, [b"a"])
    net.peers[1] = net._peers(1, 333)  # restarted: a new boot id, no memory of the interest
    net.tick(600)
    assert reader.got == [[b"invalidate", None]]
    net.tables[0].remember(reader, [b"a"])
    # The reader stalls past FORGET_MS: the peer drops its interest, then takes it up again.
    net.peers[1].tick(700 + FORGET_MS)
    assert not net.peers[1].interested
    net.peers[1].on_changes([b"a"], False)  # not sent: nobody interested
    net.tick(800 + FORGET_MS)
    assert reader.got[-1] == [b"invalidate", None] and net.peers[0].flushes == 2


def test_big_batches_are_split_and_numbered():
    net = Net()
    _on(net.tables[0], net.sessions[0])
    net.tick(0)
    sent = []
    net.peers[1].send = lambda node, msg: sent.append(msg)
    key = b"k" * 1000
    net.peers[1].on_changes([key] * (2 * MAX_KEY_BYTES // 1000), True)
    assert len(sent) >= 2 and [m.seq for m in sent] == list(range(2, 2 + len(sent)))
    assert [m.flush for m in sent] == [False] * (len(sent) - 1) + [True]
    assert all(sum(len(k) for k in m.keys) <= MAX_KEY_BYTES for m in sent)


# -- many prefixes: no quadratic work on the event loop -------------------------------------------
def _exact_overlap(existing: list[bytes], prefixes: list[bytes]) -> bool:
    """Redis's own loop: any new prefix overlapping an existing or another new one."""
    def overlap(a: bytes, b: bytes) -> bool:
        return a.startswith(b) or b.startswith(a)
    return any(overlap(p, e) for p in prefixes for e in existing) or any(
        overlap(p, q) for i, p in enumerate(prefixes) for q in prefixes[i + 1:])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=3).map(lambda b: b.replace(b"\x00", b"a")), max_size=6),
       st.lists(st.binary(max_size=3), min_size=1, max_size=12))
def test_the_sorted_overlap_check_agrees_with_redis_loop(existing, prefixes):
    # Existing prefixes never overlap each other (they passed the check).
    kept: list[bytes] = []
    for e in existing:
        if not _exact_overlap(kept, [e]):
            kept.append(e)
    pair = _some_overlap(sorted(kept), prefixes)
    assert (pair is not None) == _exact_overlap(kept, prefixes)
    if pair is not None:
        i, other, other_is_existing = pair
        p = prefixes[i]
        assert p.startswith(other) or other.startswith(p)
        assert other in kept if other_is_existing else other in prefixes[i + 1:]


def test_100000_prefixes_are_checked_and_matched_without_quadratic_work():
    many = [b"p%06d:" % i for i in range(100_000)]
    args = [a for p in many for a in (b"PREFIX", p)]
    s, other = FakeSession(1), FakeSession(2)
    t = _table(s, other)
    _on(t, s, b"BCAST", *args)  # Redis's loop: 5 * 10^9 comparisons
    assert s.tracking.prefixes == many
    try:
        _on(t, other, b"BCAST", *args, b"PREFIX", b"p099999:x")
    except CommandError as exc:
        assert str(exc) == ("ERR Prefix 'p099999:' overlaps with another provided prefix 'p099999:x'. "
                            "Prefixes for a single client must not overlap.")
    else:
        raise AssertionError("an overlapping prefix was accepted")
    try:
        parse_tracking([b"CLIENT", b"TRACKING", b"ON", b"BCAST", b"PREFIX", b"p05"],
                       s.tracking, lambda cid: True)
    except CommandError as exc:
        assert "Prefix 'p05' overlaps with an existing prefix 'p050000:'" in str(exc)
    else:
        raise AssertionError("a prefix overlapping existing ones was accepted")
    # Both ways past the bound: the pair the sort finds.
    try:
        parse_tracking([b"CLIENT", b"TRACKING", b"ON", b"BCAST", b"PREFIX", b"q", b"PREFIX", b"p070000"],
                       s.tracking, lambda cid: True)
    except CommandError as exc:
        assert "Prefix 'p070000' overlaps with an existing prefix 'p070000:'" in str(exc)
    else:
        raise AssertionError("a prefix overlapping an existing one was accepted")
    # A change looks up only its own first bytes: each key reaches the one
    # client whose prefix it has, in the order the keys came.
    t.invalidate([b"p000007:a", b"zzz", b"p000007:b", b"p012345:"])
    assert s.got == [[b"invalidate", [b"p000007:a", b"p000007:b"]], [b"invalidate", [b"p012345:"]]]
    t.disable(s)
    assert not t.prefixes and not t.prefix_lengths
