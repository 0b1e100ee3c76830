"""A member gone mad: authenticated peer messages of every type with random field
values that pass the validator, sent to every node of a real 1x3 shard. The
nodes may change state (a member is trusted), but none crashes, hangs or logs
a traceback, and the shard serves writes afterwards."""

from __future__ import annotations

import os
import random

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import makod.core.requests  # noqa: F401  (registers every message type)
import makod.core.txn_messages  # noqa: F401
import makod.net.acl_sync  # noqa: F401
import makod.net.pubsub_sync  # noqa: F401
from makod.core.messages import REGISTRY
from makod.net.validate import BadPeerMessage, Validator
from tests.hardening.test_peer_port import _authenticated, _config
from tests.integration.cluster_util import wait_for

EXAMPLES = int(os.environ.get("MAKODB_FUZZ_EXAMPLES", "60"))

_value = st.one_of(
    st.integers(0, 1 << 20), st.integers(0, 1 << 55), st.booleans(), st.none(), st.binary(max_size=30),
    st.text(max_size=10), st.lists(st.binary(max_size=20), max_size=3),
    st.lists(st.integers(0, 1000), min_size=3, max_size=3),
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 1 << 20), st.binary(max_size=20)), max_size=3),
)


_small = st.integers(0, 1 << 20)
_BY_NAME = {
    "ballot": st.integers(0, 1 << 30), "promised": st.integers(0, 1 << 30), "txn": st.lists(_small, min_size=3,
                                                                                          max_size=3),
    "values": st.lists(st.binary(max_size=40), max_size=3), "reason": st.text(max_size=10),
    "entries": st.lists(st.tuples(_small, st.integers(0, 1 << 30), st.binary(max_size=30)), max_size=3),
    "result": st.binary(max_size=30), "meta": st.none() | st.binary(max_size=30),
    "items": st.lists(st.binary(max_size=20), max_size=3), "keys": st.lists(st.binary(max_size=20), max_size=3),
    "deps": st.none() | st.lists(_small, min_size=1, max_size=2), "lines": st.lists(st.text(max_size=30), max_size=3),
    "origin": st.integers(0, 255), "rid": st.integers(0, 1 << 63),
    "kind": st.integers(0, 2), "channel": st.binary(max_size=20), "payload": st.binary(max_size=40),
}
for _name in ("ok", "transfer", "last", "serving"):
    _BY_NAME[_name] = st.booleans()


def _message(code: int) -> st.SearchStrategy:
    cls = REGISTRY[code]
    return st.tuples(*[_BY_NAME.get(name, _small if name not in ("request", "ops", "closed", "ranges", "reads")
                                    else _value) for name in cls.__slots__])


def _wire(code: int, fields: tuple, src: int) -> list:
    cls = REGISTRY[code]
    return [code] + [src if name == "src" else 0 if name in ("shard", "participant_shard") else value
                     for name, value in zip(cls.__slots__, fields)]


def test_random_messages_from_a_member_do_not_crash_any_node(trio):
    replicas = _config(trio).replicas
    validator = Validator(1, node_ids={r.node_id for r in replicas})
    sent = [0]
    links = {}

    def link(target, me):
        key = (target.node_id, me)
        if key not in links:
            links[key] = _authenticated(trio, target.peer_port, me, target.node_id)
        return links[key]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data(), code=st.sampled_from(sorted(REGISTRY)), which=st.integers(0, 5))
    def fuzz(data, code, which):
        fields = data.draw(_message(code))
        target = replicas[which % 3]
        me = [r.node_id for r in replicas if r.node_id != target.node_id][which // 3]
        obj = _wire(code, fields, me)
        try:
            validator.message(msgpack.unpackb(msgpack.packb(obj), raw=False, strict_map_key=False), me)
        except BadPeerMessage:
            return  # closes the link: tested elsewhere
        s, dialer = link(target, me)
        try:
            s.sendall(dialer.seal(msgpack.packb(obj)))
            sent[0] += 1
        except OSError:
            links.pop((target.node_id, me), None)

    fuzz()
    for s, _ in links.values():
        s.close()
    assert sent[0] >= EXAMPLES // 4
    for r in replicas:
        assert trio.client(r.name).ping() is True
        assert "Traceback" not in trio.log(r.name), trio.log(r.name)[-3000:]
    key = f"after-fuzz-{random.random()}"
    wait_for(lambda: trio.client(trio.leader()).set(key, "ok"), timeout=30, what="a write after the fuzz")
