"""HRANDFIELD, SRANDMEMBER and ZRANDMEMBER with a negative count build |count|
elements whatever the collection holds: past RANDOM_PICKS_MAX they answer an
error instead of holding the event loop (10^8 picks held a leader for over a
minute, and it was deposed)."""

from __future__ import annotations

import pytest

from makod.kv import errors
from makod.kv.args import RANDOM_PICKS_MAX
from makod.kv.replies import ErrorReply, Pairs
from tests.unit.harness import Harness

COMMANDS = [
    ("HRANDFIELD", ("HSET", "k", "f", "v"), ()),
    ("HRANDFIELD", ("HSET", "k", "f", "v"), ("WITHVALUES",)),
    ("SRANDMEMBER", ("SADD", "k", "a", "b"), ()),
    ("ZRANDMEMBER", ("ZADD", "k", "1", "a"), ()),
    ("ZRANDMEMBER", ("ZADD", "k", "1", "a"), ("WITHSCORES",)),
]


@pytest.mark.parametrize("command, fill, extra", COMMANDS, ids=[f"{c}{''.join(e)}" for c, _, e in COMMANDS])
def test_negative_counts_are_bounded(command, fill, extra):
    h = Harness()
    # A missing key answers an empty array whatever the count, as in Redis.
    assert h.run(command, "k", "-100000000", *extra) == []
    h.run(*fill)
    got = h.run(command, "k", str(-RANDOM_PICKS_MAX), *extra)
    assert len(_items(got)) == RANDOM_PICKS_MAX
    too_many = RANDOM_PICKS_MAX + 1
    assert h.run(command, "k", str(-too_many), *extra) == ErrorReply(
        errors.RANDOM_PICKS_TOO_MANY.format(too_many, RANDOM_PICKS_MAX))
    assert h.run(command, "k", "-100000000", *extra) == ErrorReply(
        errors.RANDOM_PICKS_TOO_MANY.format(100_000_000, RANDOM_PICKS_MAX))
    # Positive counts are bounded by the collection: no limit there.
    assert len(_items(h.run(command, "k", "100000000", *extra))) >= 1


def _items(reply):
    return reply.items if isinstance(reply, Pairs) else reply
