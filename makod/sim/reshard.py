"""Slot moves under faults (docs/RESHARDING.md, "Verification").

An operator that keeps moving slots between shards while every other fault
keeps running, exactly as ``makoctl cluster reshard`` drives a real
cluster: for a range of slots around a key the workload uses (one slot, or
a few, or a thousand), the MAKO SLOTS steps in order (IMPORTING at the
target, FREEZE at the source, EXPORT/IMPORT batches, OWN, DROP until 0),
each sent as a client request to a random replica of the shard (which
forwards it to its leader), asked again after an error that says to retry,
or when no answer comes (a crashed, paused or partitioned replica). One
move at a time; after healing it finishes the move under way and starts no
other.

What it checks beyond what the world checks (one value per slot, replicas
converge, no acknowledged write lost, serializable histories, all across
moves): every step answers as the protocol says (a refusal other than
"retry" is a failure), and at the end every slot is owned by exactly one
shard, no shard is left mid-move, and every shard holds keys of its own
slots only (nothing left behind, nothing served from the wrong shard).
"""

from __future__ import annotations

import random
from array import array
from typing import TYPE_CHECKING, Any, Callable

from makod.core import slot_table
from makod.kv import dbs
from makod.kv.hashslot import NUM_SLOTS, key_slot
from makod.kv.replies import ErrorReply
from makod.kv.requests import TxnRequest

if TYPE_CHECKING:
    from makod.sim.world import World

STEP_TIMEOUT_MS = 1000.0
EXPORT_BATCH = 7  # small: moves take several rounds, and crashes land between them
WIDTHS = (1, 1, 3, 40, 1000)
TOO_LARGE = "ERR transaction too large"
# ("ERR request too large": a follower may not forward a big IMPORT; its
# leader takes it directly, as makoctl sends it.)
RETRY_PREFIXES = ("TRYAGAIN", "CLUSTERDOWN", "LOADING", "TIMEOUT", "ERR connection refused", "ERR request too large")


class ReshardFailed(AssertionError):
    pass


class Move:
    __slots__ = ("src", "dst", "lo", "hi", "id", "phase", "cursor", "more", "items")

    def __init__(self, src: int, dst: int, lo: int, hi: int, move_id: int) -> None:
        self.src, self.dst, self.lo, self.hi, self.id = src, dst, lo, hi, move_id
        self.phase = "importing"
        self.cursor = b""
        self.more = True
        self.items: list[bytes] = []


class Resharder:
    def __init__(self, world: "World") -> None:
        self.world = world
        # A stream of its own: runs without moves replay as they always did.
        self.rng = random.Random(world.seed * 15485867 + 11)
        self.owner = array("h", bytes(2 * NUM_SLOTS))
        for shard, ranges in enumerate(world.slot_ranges):
            for lo, hi in ranges:
                self.owner[lo:hi + 1] = array("h", [shard]) * (hi - lo + 1)
        self.hot_slots: list[int] = []  # the slots of the workload's keys (runner.py sets them)
        self.move: Move | None = None
        self.quiet = False
        self.attempt = 0
        self.failures: list[str] = []
        self.stats = {"moves": 0, "slots": 0, "keys": 0, "steps": 0, "retries": 0, "undone": 0,
                      "shards_added": 0}
        # In some runs a shard joins (makoctl cluster add-shard) once this
        # many moves are done, and the next move goes to it; a world of one
        # shard gets its second before the first move.
        self.add_shard_after = 0 if len(world.slot_ranges) < 2 else self.rng.choice((None, None, 0, 1, 3))
        self.to_new_shard: int | None = None

    @property
    def idle(self) -> bool:
        return self.move is None

    # -- choosing a move ----------------------------------------------------------------------
    def step(self) -> None:
        world = self.world
        if self.move is not None or self.quiet or not self.hot_slots:
            return
        if self.add_shard_after is not None and self.stats["moves"] >= self.add_shard_after:
            self.add_shard_after = None
            self.to_new_shard = world.add_shard()
            self.stats["shards_added"] += 1
        if world.num_shards < 2 or not world.knows_every_shard():
            return  # (as makoctl add-shard waits until every node knows the new shard)
        rng = self.rng
        slot = rng.choice(self.hot_slots)
        width = rng.choice(WIDTHS)
        src = self.owner[slot]
        lo = max(0, slot - rng.randrange(width))
        hi = min(NUM_SLOTS - 1, lo + width - 1)
        while self.owner[lo] != src:
            lo += 1
        while self.owner[hi] != src:
            hi -= 1
        if any(self.owner[s] != src for s in range(lo, hi + 1)):
            lo = hi = slot
        dst = rng.choice([s for s in range(world.num_shards) if s != src])
        if self.to_new_shard is not None:
            dst, self.to_new_shard = self.to_new_shard, None
        self.move = Move(src, dst, lo, hi, rng.randrange(1, slot_table.MAX_MOVE_ID))
        world.trace(f"RESHARD move {self.move.id}: slots {lo}-{hi} from shard {src} to shard {dst}")
        self._next()

    def heal(self) -> None:
        """The faults stop: finish the move under way, start no other."""
        self.quiet = True

    # -- the steps ---------------------------------------------------------------------------------
    def _next(self) -> None:
        m = self.move
        assert m is not None
        r = (b"%d" % m.lo, b"%d" % m.hi)
        mid = b"%d" % m.id
        if m.phase == "importing":
            self._call(m.dst, [b"MAKO", b"SLOTS", b"IMPORTING", *r, b"%d" % m.src, mid], self._after_importing)
        elif m.phase == "freeze":
            self._call(m.src, [b"MAKO", b"SLOTS", b"FREEZE", *r, b"%d" % m.dst, mid], self._after_freeze)
        elif m.phase == "export":
            self._call(m.src, [b"MAKO", b"SLOTS", b"EXPORT", *r, mid, m.cursor, b"%d" % EXPORT_BATCH],
                       self._after_export)
        elif m.phase == "import":
            self._call(m.dst, [b"MAKO", b"SLOTS", b"IMPORT", *r, b"%d" % m.src, mid, *m.items], self._after_import)
        elif m.phase == "own":
            self._call(m.dst, [b"MAKO", b"SLOTS", b"OWN", *r, mid], self._after_own)
        elif m.phase == "drop":
            self._call(m.src, [b"MAKO", b"SLOTS", b"DROP", *r, mid], self._after_drop)
        elif m.phase == "undo-drop":
            self._call(m.dst, [b"MAKO", b"SLOTS", b"DROP", *r, mid], self._after_undo_drop)
        else:
            self._call(m.src, [b"MAKO", b"SLOTS", b"UNFREEZE", *r, mid], self._after_unfreeze)

    def _go(self, phase: str) -> None:
        assert self.move is not None
        self.move.phase = phase
        self._next()

    def _after_importing(self, _result: Any) -> None:
        self._go("freeze")

    def _after_freeze(self, _result: Any) -> None:
        self._go("export")

    def _after_export(self, result: Any) -> None:
        m = self.move
        assert m is not None
        more, cursor, items = result
        m.more = more == b"1"
        m.cursor = cursor
        if items:
            m.items = list(items)
            self._go("import")
        else:
            self._go("export" if m.more else "own")

    def _after_import(self, result: Any) -> None:
        m = self.move
        assert m is not None
        self.stats["keys"] += int(result)
        m.items = []
        self._go("export" if m.more else "own")

    def _after_undo_drop(self, result: Any) -> None:
        self._go("undo-drop" if result else "unfreeze")

    def _after_unfreeze(self, _result: Any) -> None:
        m = self.move
        assert m is not None
        self.stats["undone"] += 1
        self.world.trace(f"RESHARD move {m.id} undone: slots {m.lo}-{m.hi} stay shard {m.src}'s")
        self.move = None

    def _after_own(self, _result: Any) -> None:
        self._go("drop")

    def _after_drop(self, result: Any) -> None:
        m = self.move
        assert m is not None
        if result:
            self._next()
            return
        for slot in range(m.lo, m.hi + 1):
            self.owner[slot] = m.dst
        self.stats["moves"] += 1
        self.stats["slots"] += m.hi - m.lo + 1
        self.world.trace(f"RESHARD move {m.id} done: slots {m.lo}-{m.hi} now shard {m.dst}'s")
        self.move = None

    # -- one request, asked again until it is answered --------------------------------------------
    def _call(self, shard: int, argv: list[bytes], on_ok: Callable[[Any], None]) -> None:
        world = self.world
        self.attempt += 1
        attempt = self.attempt
        self.stats["steps"] += 1

        def retry(delay_ms: float) -> None:
            if attempt != self.attempt:
                return  # answered, or asked again already
            self.attempt += 1
            self.stats["retries"] += 1
            world.at(delay_ms, lambda: self._call(shard, argv, on_ok))

        def answer(result: Any) -> None:
            if attempt != self.attempt:
                return  # an earlier try's late answer: that try was given up
            if isinstance(result, ErrorReply):
                if argv[2] == b"IMPORT" and result.text.startswith(TOO_LARGE):
                    # A key bigger than one transaction may write: undo the
                    # move, as makoctl does.
                    self.attempt += 1
                    self._go("undo-drop")
                    return
                if not result.text.startswith(RETRY_PREFIXES):
                    # Retried steps are idempotent, and a step of this move
                    # is only refused if the protocol broke.
                    self.failures.append(f"{argv[2].decode()} {b' '.join(argv[3:7]).decode()} at shard {shard}: "
                                         f"{result.text} (t={world.now:.0f} ms)")
                retry(20 + 80 * self.rng.random())
                return
            self.attempt += 1
            on_ok(result)

        voters, learners = world.members[shard]
        leaders = world.leaders(shard)
        # Mostly the leader, as makoctl asks (from status); now and then any
        # replica, which forwards it.
        node_id = leaders[0] if leaders and self.rng.random() < 0.7 else self.rng.choice(voters + learners)
        node = world.nodes.get(node_id)
        world.at(STEP_TIMEOUT_MS, lambda: retry(0))
        if node is None:
            world.at(1.0, lambda: retry(50))
        elif world.now >= node.paused_until:
            node.submit(TxnRequest([list(argv)]), answer)

    def describe(self) -> str:
        """The move under way and the last refusal, for a run that never settles."""
        m = self.move
        if m is None:
            return ""
        last = f"; last refused: {self.failures[-1]}" if self.failures else ""
        return f"move {m.id} of slots {m.lo}-{m.hi} from shard {m.src} to {m.dst} stuck at {m.phase}{last}"

    # -- the end ----------------------------------------------------------------------------------------
    def check(self) -> dict[str, int]:
        """After healing: every slot one shard's, no shard mid-move, no stray keys."""
        world = self.world
        if self.failures:
            raise ReshardFailed(f"seed {world.seed}: a step of a move was refused: {self.failures[0]}")
        owned = [-1] * NUM_SLOTS
        leaders = []
        for shard in range(world.num_shards):
            leader = world.nodes[world.leaders(shard)[0]]
            assert leader is not None
            leaders.append(leader)
            rec = leader.core.ks.data.get(slot_table.TABLE_KEY)
            table = slot_table.decode(rec.value) if rec is not None else slot_table.initial(world.slot_ranges[shard])
            for lo, hi, state, peer, move in table:
                if state in slot_table.BUSY_STATES:
                    raise ReshardFailed(f"seed {world.seed}: shard {shard} is left {slot_table.STATE_NAMES[state]} "
                                        f"for slots {lo}-{hi} (move {move})")
                if state == slot_table.OWNED:
                    for slot in range(lo, hi + 1):
                        if owned[slot] != -1:
                            raise ReshardFailed(f"seed {world.seed}: slot {slot} owned by shards {owned[slot]} "
                                                f"and {shard}")
                        owned[slot] = shard
        for shard, leader in enumerate(leaders):
            for key in leader.core.ks.data:
                if dbs.is_hidden(key):
                    continue
                slot = key_slot(dbs.user_key(key))
                if owned[slot] != shard:
                    raise ReshardFailed(f"seed {world.seed}: shard {shard} holds {key!r} of slot {slot}, "
                                        f"shard {owned[slot]}'s")
        if owned != list(self.owner):
            slot = next(s for s in range(NUM_SLOTS) if owned[s] != self.owner[s])
            raise ReshardFailed(f"seed {world.seed}: slot {slot} is owned by shard {owned[slot]} by the tables, "
                                f"by shard {self.owner[slot]} by the moves made")
        return dict(self.stats)
