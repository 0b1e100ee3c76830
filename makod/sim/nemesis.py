"""Fault patterns: short scripted sequences of faults, aimed at a random victim.

Random faults alone rarely line up the way protocol corners need: a
follower that acknowledged a leader, then restarts, then sits on the other
side of a partition, all within one lease. These patterns are generic (none
names a bug, a key or a seed), so the simulator still finds bugs by itself;
they just make the dangerous interleavings common instead of rare. Every
harsh seed, two thirds of the default ones and a third of the calm ones run
a random pattern every ``nemesis_every_ms`` (Jepsen calls such a thing a
nemesis); on a calm network a pattern plays out undisturbed.

* ``flip``: a leader keeps one follower and loses the rest of its shard for
  about an election timeout, then loses that follower too (which may restart
  at the same moment): whoever acknowledged it last now sits with the
  majority that elects its successor, while its lease may still run.
* ``isolate``: a leader loses its own shard but still reaches every other
  shard, whose coordinators keep asking it to read and validate.
* ``burst``: a leader's messages to its followers are lost for a few tens
  of milliseconds, then flow again, and the leader crashes right after: its
  followers hold later slots but not the earlier ones.
* ``restart``: a replica restarts at once; a while later another does.
* ``shard-restart``: every replica of a shard crashes at once (a rack loses
  power) and comes back within 100 ms, from its disk alone.
* ``handover-flip``: a leader hands over to another voter, and the new
  leader is then flipped as above.
* ``split``: two shards lose each other (datacenters apart) for a few
  seconds; one of them changes leader meanwhile, then all its replicas lose
  power and come back just as the network heals.

Every link cut here heals by itself; the world's heal_all() heals the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from makod.core.txn_messages import TxnInstall

if TYPE_CHECKING:
    from makod.sim.world import World

# Each pattern with its weight.
PATTERNS = {"flip": 2, "isolate": 1, "burst": 2, "restart": 1, "shard-restart": 1, "handover-flip": 2, "split": 2}


def run_pattern(world: "World") -> None:
    names = [name for name, weight in PATTERNS.items() for _ in range(weight)]
    name = world.rng.choice(names)
    if name == "restart":
        _restart(world)
        return
    if name == "shard-restart":
        _shard_restart(world, world.rng.randrange(world.num_shards))
        return
    if name == "split":
        if world.num_shards > 1:
            a, b = world.rng.sample(range(world.num_shards), 2)
            _split(world, a, b)
        return
    leaders = [i for i in world.leaders() if world.now >= world.nodes[i].paused_until]
    if not leaders:
        return
    leader = world.rng.choice(leaders)
    if name == "flip":
        _flip(world, leader)
    elif name == "isolate":
        _isolate(world, leader)
    elif name == "burst":
        _burst(world, leader)
    else:
        _handover_flip(world, leader)


def _shard_peers(world: "World", node: int) -> list[int]:
    voters, learners = world.members[world.shard_of_node[node]]
    return [n for n in voters + learners if n != node]


def _cut(world: "World", a: int, others: list[int], length_ms: float, label: str) -> None:
    """Cut the links between ``a`` and ``others``, both ways, for ``length_ms``."""
    links = {(a, b) for b in others} | {(b, a) for b in others}
    links -= world.blocked  # heal only what this cut added
    world.blocked |= links
    world.trace(f"NEMESIS {label}: n{a} cut from {sorted(others)} for {length_ms:.0f}ms")

    def heal() -> None:
        world.blocked -= links

    world.at(length_ms, heal)


def _flip(world: "World", leader: int) -> None:
    peers = _shard_peers(world, leader)
    if len(peers) < 2:
        return
    timeout = world.paxos_config.election_timeout_ms
    # Keep the shard's preferred replica when it is a follower (it times out
    # first, so it is the likeliest successor); otherwise any follower.
    preferred = world.preferred.get(world.shard_of_node[leader])
    kept = preferred if preferred in peers and world.rng.random() < 0.8 else world.rng.choice(peers)
    first = timeout * (1.0 + 0.5 * world.rng.random())
    _cut(world, leader, [p for p in peers if p != kept], first + timeout * 3, "flip")

    def flip() -> None:
        if world.nodes.get(leader) is None:
            return
        _cut(world, leader, [kept], timeout * (1 + 2 * world.rng.random()), "flip")
        if world.rng.random() < 0.5:
            world.crash(kept)
            world.at(world.rng.random() * 5, lambda: world.restart(kept))

    world.at(first, flip)


def _isolate(world: "World", leader: int) -> None:
    timeout = world.paxos_config.election_timeout_ms
    _cut(world, leader, _shard_peers(world, leader), timeout * (1.5 + 2 * world.rng.random()), "isolate")


def _burst(world: "World", leader: int) -> None:
    length = 10 + 50 * world.rng.random()
    world.lossy[leader] = (world.now + length, 0.5 + 0.5 * world.rng.random())
    world.trace(f"NEMESIS burst: n{leader} loses its messages for {length:.0f}ms, then crashes")

    def crash() -> None:
        world.crash(leader)
        world.at(world.rng.random() * 200, lambda: world.restart(leader))

    world.at(length + world.rng.random() * 10, crash)


def _split(world: "World", a: int, b: int) -> None:
    """Shard ``a``'s datacenter loses shard ``b``'s in the middle of a two-phase
    commit (the moment ``a`` tells ``b`` to install a transaction, or after a
    second at the latest), changes leader, then loses power and comes back
    just as the network heals."""
    armed = {"on": True}

    def trigger(src: int, dst: int, msg) -> bool:
        if armed["on"] and type(msg) is TxnInstall and world.shard_of_node[src] == a \
                and world.shard_of_node[dst] == b:
            armed["on"] = False
            _split_now(world, a, b)
            return True  # this very message is lost with the link
        return False

    world.send_hooks.append(trigger)

    def disarm() -> None:
        if trigger in world.send_hooks:
            world.send_hooks.remove(trigger)
        if armed["on"]:
            armed["on"] = False
            _split_now(world, a, b)

    world.at(1000, disarm)


def _split_now(world: "World", a: int, b: int) -> None:
    side_a = world.members[a][0] + world.members[a][1]
    side_b = world.members[b][0] + world.members[b][1]
    length = 1000 + 2000 * world.rng.random()
    links = ({(x, y) for x in side_a for y in side_b} | {(y, x) for x in side_a for y in side_b}) - world.blocked
    world.blocked |= links
    world.trace(f"NEMESIS split: shards {a} and {b} apart for {length:.0f}ms")
    def new_leader() -> None:
        for leader in world.leaders(a):
            world.crash(leader)
            world.at(world.rng.random() * 200, lambda leader=leader: world.restart(leader))

    world.at(length * 0.3 * world.rng.random(), new_leader)
    world.at(length * (0.85 + 0.1 * world.rng.random()), lambda: _shard_restart(world, a))
    world.at(length, lambda: world.blocked.difference_update(links))


def _shard_restart(world: "World", shard: int) -> None:
    voters, learners = world.members[shard]
    world.trace(f"NEMESIS shard-restart: shard {shard}")
    for node in voters + learners:
        world.crash(node)
        world.at(world.rng.random() * 100, lambda node=node: world.restart(node))


def _handover_flip(world: "World", leader: int) -> None:
    peers = [p for p in world.members[world.shard_of_node[leader]][0] if p != leader]
    node = world.nodes[leader]
    if not peers or node is None:
        return
    target = world.rng.choice(peers)
    if not node.core.paxos.transfer_leadership(target):
        return
    world.trace(f"NEMESIS handover-flip: n{leader} -> n{target}")
    node.pump()

    def then_flip() -> None:
        if world.nodes.get(target) is not None and world.nodes[target].core.paxos.role == "leader":
            _flip(world, target)

    # Soon, so the flip ends before the new leader hands leadership back to
    # the preferred replica (which it does after leading two timeouts): the
    # preferred replica is then the follower that acknowledged it last.
    world.at(world.paxos_config.election_timeout_ms * (0.2 + 0.3 * world.rng.random()), then_flip)


def _restart(world: "World") -> None:
    alive = world.alive()
    if not alive:
        return
    first = world.rng.choice(alive)
    world.crash(first)
    world.at(world.rng.random() * 20, lambda: world.restart(first))
    world.trace(f"NEMESIS restart: n{first}, and another soon")

    def second() -> None:
        candidates = [i for i in world.alive() if i != first]
        if candidates:
            victim = world.rng.choice(candidates)
            world.crash(victim)
            world.at(world.rng.random() * 20, lambda: world.restart(victim))

    world.at(500 + 1500 * world.rng.random(), second)
