"""Every message the cores send in a faulty simulated run passes the peer validator
after a msgpack round trip (the validator must never close a link that only
carries what the cores really send)."""

from __future__ import annotations

import msgpack
import pytest

from makod.codec import pack
from makod.core.messages import to_wire
from makod.net.validate import BadPeerMessage, Validator
from makod.sim import world as world_mod
from makod.sim.runner import run_seed, shape_for


@pytest.mark.parametrize("seed", [3, 11, 24])
def test_cores_only_send_what_the_validator_accepts(monkeypatch, seed):
    shape = shape_for(seed)
    original = world_mod.World.send
    seen, bad = [0], []

    validators: dict[int, Validator] = {}  # one per world: the cluster's ids

    def send(self, src, dst, msg):
        seen[0] += 1
        validator = validators.get(id(self))
        if validator is None:
            validator = validators[id(self)] = Validator(self.num_shards, node_ids=set(self.ids))
        obj = msgpack.unpackb(pack(to_wire(msg)), raw=False, strict_map_key=False)
        try:
            assert pack(to_wire(validator.message(obj, msg.src))) == pack(to_wire(msg))
        except BadPeerMessage as exc:
            bad.append(str(exc))
        return original(self, src, dst, msg)

    monkeypatch.setattr(world_mod.World, "send", send)
    run_seed(seed, profile="harsh", **shape)
    assert seen[0] > 1000
    assert not bad, bad[:5]
