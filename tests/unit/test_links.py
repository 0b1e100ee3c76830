"""The WAN link model (makod/links.py), its config section, the peer
transport's FIFO hold-back, and the simulator's --geo layout."""

from __future__ import annotations

import asyncio
import random

import pytest

from makod.config import ConfigError, default_config_dict, parse_config
from makod.links import FifoRelease, Link, LinkModel
from makod.sim.geo import draw_wan
from makod.sim.world import layout


def config(**top) -> dict:
    data = default_config_dict(shards=1, replicas=3)  # datacenters dc0, dc1, dc2
    data.update(top)
    return data


def refused(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "geo.yaml")
    assert str(info.value).startswith("geo.yaml: ")
    return info.value


# -- the model ---------------------------------------------------------------------------------

def test_pairs_are_symmetric_and_default_applies_between_distinct_datacenters():
    model = LinkModel(Link(10.0), {("dc1", "dc0"): Link(25.0, 2.0)})
    assert model.base_delay_ms("dc0", "dc1") == model.base_delay_ms("dc1", "dc0") == 25.0
    assert model.base_delay_ms("dc0", "dc2") == 10.0
    assert model.base_delay_ms("dc2", "dc2") == 0.0  # within a datacenter: nothing unless a pair says so
    assert LinkModel(pairs={("dc2", "dc2"): Link(0.3)}).base_delay_ms("dc2", "dc2") == 0.3


def test_jitter_stays_within_the_link_and_replays_per_seed():
    model = LinkModel(pairs={("dc0", "dc1"): Link(25.0, 2.0)})
    first = [model.delay_ms("dc0", "dc1", rng) for rng in [random.Random(7)] for _ in range(100)]
    again = [model.delay_ms("dc0", "dc1", rng) for rng in [random.Random(7)] for _ in range(100)]
    other = [model.delay_ms("dc0", "dc1", rng) for rng in [random.Random(8)] for _ in range(100)]
    assert first == again != other
    assert all(25.0 <= d <= 27.0 for d in first)
    assert len(set(first)) > 50


def test_a_link_without_jitter_draws_nothing():
    # Old simulator seeds replay only if a WAN without jitter leaves the stream alone.
    rng = random.Random(3)
    before = rng.getstate()
    assert LinkModel(Link(25.0)).delay_ms("dc0", "dc1", rng) == 25.0
    assert LinkModel().delay_ms("dc0", "dc0", rng) == 0.0
    assert rng.getstate() == before
    assert not LinkModel().has_delay() and LinkModel(Link(0.0, 1.0)).has_delay()


def test_fifo_release_never_lets_a_message_overtake():
    fifo = FifoRelease()
    assert fifo.release_at(0.0, 27.0) == 27.0
    assert fifo.release_at(1.0, 25.0) == 27.0  # drew less jitter: held behind the first
    assert fifo.release_at(2.0, 26.0) == 28.0
    assert fifo.release_at(100.0, 25.0) == 125.0


# -- the config ---------------------------------------------------------------------------------

def test_links_section_builds_the_model():
    cfg = parse_config(config(
        links={"default": {"delay_ms": 10}, "pairs": [{"between": ["dc0", "dc1"], "delay_ms": 25, "jitter_ms": 2},
                                                      {"between": ["dc2", "dc1"], "delay_ms": 50}]},
        client_datacenter="dc1",
    ), "geo.yaml")
    assert cfg.links.link("dc1", "dc0") == Link(25.0, 2.0)
    assert cfg.links.link("dc1", "dc2") == Link(50.0, 0.0)
    assert cfg.links.link("dc0", "dc2") == Link(10.0, 0.0)
    assert cfg.client_datacenter == "dc1"


def test_inject_delay_ms_is_still_the_default_between_datacenters():
    cfg = parse_config(config(inject_delay_ms=25), "old.yaml")
    assert cfg.inject_delay_ms == 25.0
    assert cfg.links.base_delay_ms("dc0", "dc1") == 25.0 and cfg.links.base_delay_ms("dc0", "dc0") == 0.0
    cfg = parse_config(config(inject_delay_ms=25, links={"pairs": [{"between": ["dc0", "dc2"], "delay_ms": 5}]}),
                       "old.yaml")
    assert cfg.links.base_delay_ms("dc0", "dc1") == 25.0 and cfg.links.base_delay_ms("dc2", "dc0") == 5.0
    assert not parse_config(config(), "plain.yaml").links.has_delay()


@pytest.mark.parametrize("top, field, expected", [
    (dict(links=[]), "links", "a mapping with default and/or pairs"),
    (dict(links={"defaults": {}}), "links.defaults", "default or pairs"),
    (dict(links={"default": 25}), "links.default", "a mapping with delay_ms, jitter_ms"),
    (dict(links={"default": {"jitter_ms": 1}}), "links.default.delay_ms", "(required field)"),
    (dict(links={"default": {"delay_ms": -1}}), "links.default.delay_ms", "a number 0-10000"),
    (dict(links={"default": {"delay_ms": "25ms"}}), "links.default.delay_ms", "a number 0-10000"),
    (dict(links={"default": {"delay_ms": True}}), "links.default.delay_ms", "a number 0-10000"),
    (dict(links={"default": {"delay_ms": 5, "jitter_ms": 1e9}}), "links.default.jitter_ms", "a number 0-10000"),
    (dict(links={"default": {"delay_ms": 5}}, inject_delay_ms=5), "links.default", "absent when inject_delay_ms"),
    (dict(links={"pairs": {"between": ["dc0", "dc1"]}}), "links.pairs", "a list of"),
    (dict(links={"pairs": [{"delay_ms": 5}]}), "links.pairs[0].between", "two datacenter names"),
    (dict(links={"pairs": [{"between": "dc0-dc1", "delay_ms": 5}]}), "links.pairs[0].between", "two datacenter"),
    (dict(links={"pairs": [{"between": ["dc0", "mars"], "delay_ms": 5}]}), "links.pairs[0].between",
     "datacenters of the replicas (dc0, dc1, dc2)"),
    (dict(links={"pairs": [{"between": ["dc0", "dc1"], "delay_ms": 5},
                           {"between": ["dc1", "dc0"], "delay_ms": 6}]}), "links.pairs[1].between",
     "a pair no earlier entry gives"),
    (dict(links={"pairs": [{"between": ["dc0", "dc1"], "delay": 5}]}), "links.pairs[0].delay",
     "one of between, delay_ms, jitter_ms"),
    (dict(links={"pairs": [{"between": ["dc0", "dc1"], "delay_ms": 300, "jitter_ms": 100}]}),
     "links.pairs[0]", "below 0.9 x election_timeout_ms (720 ms"),
    (dict(inject_delay_ms=400), "inject_delay_ms", "below 0.9 x election_timeout_ms"),
    (dict(client_datacenter="dc9"), "client_datacenter", "one of the datacenters (dc0, dc1, dc2)"),
    (dict(client_datacenter=3), "client_datacenter", "a non-empty string"),
])
def test_bad_links_are_refused_naming_the_field(top, field, expected):
    error = refused(config(**top))
    assert error.path == field
    assert expected in error.expected


def test_a_slow_wan_is_accepted_with_a_longer_election_timeout():
    cfg = parse_config(config(election_timeout_ms=3000,
                              links={"default": {"delay_ms": 400, "jitter_ms": 50}}), "slow.yaml")
    assert cfg.links.base_delay_ms("dc0", "dc2") == 400.0


# -- the real transport's hold-back -------------------------------------------------------------------

def test_the_peer_link_releases_jittered_messages_in_send_order():
    from makod.net.peers import _Link

    sent: list[bytes] = []

    class Owner:
        closed = False

    async def run() -> None:
        link = _Link(Owner(), 1, "127.0.0.1", 1)
        link.send = sent.append  # the socket side is not under test
        rng = random.Random(5)
        for i in range(50):
            link.send_later(b"%d" % i, 5.0 + rng.random() * 20.0)  # jitter far larger than the send gaps
        await asyncio.sleep(0.1)  # the last release is due by about 25 ms
        assert not link.held and link.timer is None

    asyncio.run(run())
    assert sent == [b"%d" % i for i in range(50)]


# -- the simulator's WAN --------------------------------------------------------------------------------

def test_geo_layouts_replay_per_seed_and_gather_first_voters():
    members = layout(shards=2, replicas=3, learners=1)
    a, b = draw_wan(random.Random(42), members), draw_wan(random.Random(42), members)
    assert a.datacenter == b.datacenter and a.links.pairs == b.links.pairs
    assert set(a.datacenter) == {n for voters, learners in members for n in voters + learners}
    for voters, learners in members:
        assert all(a.datacenter[n] == a.datacenter[voters[0]] for n in learners)
    seen = [draw_wan(random.Random(seed), members) for seed in range(40)]
    assert {l.delay_ms for w in seen for l in w.links.pairs.values()} == {5.0, 25.0, 50.0}
    assert any(w.datacenter[0] != w.datacenter[4] for w in seen)  # some seeds put leaders apart
