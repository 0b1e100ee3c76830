"""Differential tests of the geo commands against real Redis 7.0.

Replies must match byte for byte, unsorted searches included: makodb searches
the same geohash boxes in the same order as Redis. The one exception is a
zset score printed by ZRANGE/ZSCORE (a stored distance): Redis 7.0 prints
``%.17g``, makodb Redis 7.2's shortest form, so those compare as numbers.
RESP3 replies (GEOPOS's and WITHCOORD's doubles) are compared on the wire.
"""

from __future__ import annotations

import random
import socket
from typing import Any, Callable

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compat.test_diff_zsets import Z, _same
from tests.compat.test_differential import B, real, run_ours, run_real  # noqa: F401
from makod.kv.table import TABLE
from tests.unit.harness import Harness


def compare(real_client: Any, h: Harness, script: list[list[bytes]], normalise: Callable[..., tuple] | None = None) -> None:
    """Each step's replies must be equal once ``normalise(args, h, theirs, ours)`` has seen them."""
    run_real(real_client, [b"FLUSHALL"])
    for number, args in enumerate(script):
        theirs = run_real(real_client, args)
        ours = run_ours(h, args)
        if normalise is not None:
            theirs, ours = normalise(args, h, theirs, ours)
        assert theirs == ours, f"step {number}: {args!r}\n  redis: {theirs!r}\n  ours:  {ours!r}\n  script: {script[: number + 1]!r}"


def _scores_as_numbers(args: list[bytes], h: Harness, theirs: Any, ours: Any) -> tuple:
    if args[0].upper() in (b"ZRANGE", b"ZSCORE") and _same(theirs, ours):
        return theirs, theirs
    return theirs, ours


SICILY = Z("GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania")
PTS = Z("GEOADD pts 15.1 37.1 a 15.2 37.2 b 14.9 36.9 c 15.0 37.0 d 16 38 e 13 36 f 15.5 37.5 g 14.5 37.3 h")
SETUP = [SICILY, PTS, Z("SET str x")]

SCRIPTS = {
    "geoadd": [
        SICILY, Z("GEOADD Sicily 200 100 x"), Z("GEOADD Sicily 1 -85.06 x"), Z("GEOADD Sicily NX XX 1 2 x"),
        Z("GEOADD Sicily CH 13.4 38.1 Palermo 2 3 foo"), Z("GEOADD Sicily NX CH 13.5 38.1 Palermo"),
        Z("GEOADD Sicily XX 1 1 nope"), Z("GEOADD Sicily XX CH 1 1 foo"), Z("GEOADD Sicily GT 1 1 nope"),
        Z("GEOADD Sicily 1 2"), Z("GEOADD Sicily 1 2 a 3"), Z("GEOADD Sicily abc 2 x"), Z("GEOADD Sicily 1e400 2 x"),
        Z("GEOADD Sicily 1e-400 2 x"), Z("GEOADD Sicily nan 2 x"), Z("GEOADD Sicily 0x10 2 hex"),
        Z("GEOADD Sicily CH NX CH"), Z("GEOADD Sicily 1 1 ok 200 0 bad"), Z("EXISTS Sicily"), Z("ZCARD Sicily"),
        Z("GEOADD Sicily 180 85.05112878 edge -180 -85.05112878 edge2"), Z("GEOADD str 1 1 a"),
        Z("GEOADD new 0 0 origin"), Z("TYPE new"), Z("ZRANGE new 0 -1 WITHSCORES"), Z("OBJECT ENCODING new"),
    ],
    "pos_dist_hash": SETUP + [
        Z("GEOADD Sicily 180 85.05112878 edge -180 -85.05112878 edge2 0 0 zero -0.0000001 0.0000001 tiny"),
        Z("GEOPOS Sicily Palermo Catania nope edge edge2 zero tiny"), Z("GEOPOS nokey a"), Z("GEOPOS str a"),
        Z("GEODIST Sicily Palermo Catania"), Z("GEODIST Sicily Palermo Catania km"), Z("GEODIST Sicily Palermo Catania MI"),
        Z("GEODIST Sicily Palermo Catania ft"), Z("GEODIST Sicily Palermo Catania M"), Z("GEODIST Sicily Palermo Catania xx"),
        Z("GEODIST Sicily Palermo Catania km extra"), Z("GEODIST Sicily Palermo nope"), Z("GEODIST nokey a b"),
        Z("GEODIST Sicily Palermo Palermo"), Z("GEODIST Sicily edge edge2 km"), Z("GEODIST str a b"),
        Z("GEODIST nokey a b parsec"), Z("GEODIST Sicily zero tiny"),
        Z("GEOHASH Sicily Palermo Catania nope edge edge2 zero tiny"), Z("GEOHASH nokey a"), Z("GEOHASH str a"),
        # Scores that are not geohashes decode as Redis's uint64 cast does.
        Z("ZADD Sicily -5 w1 1e20 w2 inf w3 -inf w4 1.5 w5 1e19 w6"), Z("GEOPOS Sicily w1 w2 w3 w4 w5 w6"),
        Z("GEOHASH Sicily w1 w2 w3 w4 w5 w6"),
    ],
    "geosearch": SETUP + [
        Z("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHCOORD WITHHASH ASC"),
        Z("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 50 km"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 500 km"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 5000 km"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 50000 km"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km DESC WITHDIST"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT 2 WITHDIST"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT 2 ANY"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 1000 km COUNT 3 ANY DESC"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT 100 DESC"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYBOX 100 100 km WITHDIST WITHCOORD"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYBOX 400 50 km WITHDIST"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYBOX 50 400 mi WITHDIST"),
        Z("GEOSEARCH pts FROMMEMBER a BYBOX 50 400 mi WITHDIST ASC"), Z("GEOSEARCH pts FROMMEMBER a BYRADIUS 30 km WITHHASH"),
        Z("GEOSEARCH pts FROMMEMBER a BYRADIUS 100000 ft withdist"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 0 km"),
        Z("GEOSEARCH pts FROMLONLAT 15.1 37.1 BYRADIUS 0 m WITHDIST"), Z("GEOSEARCH pts FROMLONLAT 15 -37 BYBOX 9000 9000 km"),
        Z("GEOSEARCH nokey FROMMEMBER nope BYRADIUS 30 km"), Z("GEOSEARCH nokey FROMLONLAT 1 2 BYRADIUS 30 km"),
        Z("GEOSEARCH str FROMLONLAT 15 37 BYRADIUS 200 km"),
        # Infinite sizes: Redis's C arithmetic turns them into NaN bounds, not errors.
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS inf km"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYBOX inf 1 km"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYBOX 1 inf km"), Z("GEORADIUS pts 15 37 1e300 mi WITHDIST"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT 9223372036854775807"),
    ],
    "geosearch_errors": SETUP + [
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km ANY"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT 0"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT -1"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT x"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km COUNT"), Z("GEOSEARCH pts FROMMEMBER nope BYRADIUS 30 km"),
        Z("GEOSEARCH pts FROMMEMBER a FROMLONLAT 1 2 BYRADIUS 30 km"), Z("GEOSEARCH pts FROMLONLAT 1 2 FROMMEMBER a BYRADIUS 30 km"),
        Z("GEOSEARCH pts FROMLONLAT 1 2 BYRADIUS 30 km BYBOX 1 1 km"), Z("GEOSEARCH pts BYRADIUS 30 km WITHDIST"),
        Z("GEOSEARCH pts BYRADIUS 30 km WITHDIST ASC"), Z("GEOSEARCH pts FROMLONLAT 1 2 WITHDIST ASC"),
        Z("GEOSEARCH pts FROMLONLAT 1 2 BYRADIUS -1 km"), Z("GEOSEARCH pts FROMLONLAT 1 2 BYRADIUS x km"),
        Z("GEOSEARCH pts FROMLONLAT 1 2 BYRADIUS 1 parsec"), Z("GEOSEARCH pts FROMLONLAT 1 2 BYBOX -1 1 km"),
        Z("GEOSEARCH pts FROMLONLAT 1 2 BYBOX x 1 km"), Z("GEOSEARCH pts FROMLONLAT 1 2 BYBOX 1 y km"),
        Z("GEOSEARCH pts FROMLONLAT 1 100 BYBOX 1 1 km"), Z("GEOSEARCH pts FROMLONLAT x 1 BYBOX 1 1 km"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km STORE x"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km STOREDIST"),
        Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100 km foo"), Z("GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 100 km ANY"),
        Z("GEOSEARCH nokey FROMMEMBER a BYRADIUS -1 km"), Z("GEOSEARCH pts FROMLONLAT 15 37 BYRADIUS 100"),
    ],
    "store": SETUP + [
        Z("GEOSEARCHSTORE dst pts FROMLONLAT 15 37 BYRADIUS 100 km"), Z("ZRANGE dst 0 -1 WITHSCORES"),
        Z("GEOSEARCHSTORE dst pts FROMLONLAT 15 37 BYRADIUS 100 km STOREDIST COUNT 2"), Z("ZRANGE dst 0 -1 WITHSCORES"),
        Z("GEOSEARCHSTORE dst pts FROMLONLAT 15 37 BYRADIUS 100 km STOREDIST COUNT 2 DESC"), Z("ZRANGE dst 0 -1"),
        Z("GEOSEARCHSTORE dst pts FROMLONLAT 15 37 BYRADIUS 100 km WITHDIST"), Z("GEOSEARCHSTORE dst pts FROMLONLAT 15 37 BYRADIUS 100 km WITHHASH"),
        Z("GEOSEARCHSTORE dst pts FROMLONLAT 0 0 BYRADIUS 1 km"), Z("EXISTS dst"),
        Z("GEOSEARCHSTORE str pts FROMLONLAT 15 37 BYRADIUS 100 km"), Z("TYPE str"),
        Z("GEOSEARCHSTORE dst nokey FROMLONLAT 0 0 BYRADIUS 1 km"), Z("GEOSEARCHSTORE dst str FROMLONLAT 0 0 BYRADIUS 1 km"),
        Z("GEOSEARCHSTORE pts pts FROMMEMBER a BYRADIUS 30 km STOREDIST"), Z("ZRANGE pts 0 -1"),
    ],
    "georadius": SETUP + [
        Z("GEORADIUS pts 15 37 100 km"), Z("GEORADIUS pts 15 37 100 km WITHDIST WITHCOORD ASC"),
        Z("GEORADIUS pts 15 37 100 km STORE d2"), Z("ZRANGE d2 0 -1 WITHSCORES"),
        Z("GEORADIUS pts 15 37 100 km STOREDIST d2 DESC COUNT 3"), Z("ZRANGE d2 0 -1 WITHSCORES"),
        Z("GEORADIUS pts 15 37 100 km STORE d2 STOREDIST d3"), Z("EXISTS d2 d3"),
        Z("GEORADIUS pts 15 37 100 km STORE d2 WITHDIST"), Z("GEORADIUS pts 15 37 100 km FROMLONLAT 1 2"),
        Z("GEORADIUS pts 15 37 -100 km"), Z("GEORADIUS pts 200 37 100 km"), Z("GEORADIUS pts 15 37 100 parsec"),
        Z("GEORADIUS nokey 15 37 100 km"), Z("GEORADIUS nokey 15 37 100 km STORE d2"), Z("EXISTS d2"),
        Z("GEORADIUS str 15 37 100 km"), Z("GEORADIUS pts 15 37 100 km STORE"),
        Z("GEORADIUSBYMEMBER pts a 100 km WITHDIST"), Z("GEORADIUSBYMEMBER pts nope 100 km"),
        Z("GEORADIUSBYMEMBER nokey nope -100 parsec"), Z("GEORADIUSBYMEMBER pts a 100 km STORE d3"), Z("ZRANGE d3 0 -1"),
        Z("GEORADIUSBYMEMBER pts a -1 km"), Z("GEORADIUSBYMEMBER pts a 100 km COUNT 2 ANY WITHHASH"),
        Z("GEORADIUS_RO pts 15 37 100 km WITHDIST"), Z("GEORADIUS_RO pts 15 37 100 km STORE x"),
        Z("GEORADIUSBYMEMBER_RO pts a 100 km COUNT 1"), Z("GEORADIUSBYMEMBER_RO pts a 100 km STORE x"),
        Z("GEORADIUS pts 15 37"), Z("GEORADIUSBYMEMBER pts a 1"),
    ],
}


def _grid() -> list[list[bytes]]:
    """Points near the poles, the antimeridian and one small region; searches of every size."""
    rnd = random.Random(5)
    script = []
    for k in range(3):
        args = []
        for i in range(70):  # over 64 members in g0..g2 some searches walk many boxes
            lon = rnd.choice([rnd.uniform(-180, 180), rnd.uniform(170, 180), rnd.uniform(-180, -170), rnd.uniform(10, 11)])
            lat = rnd.choice([rnd.uniform(-85, 85), rnd.uniform(80, 85.05), rnd.uniform(-85.05, -80), rnd.uniform(40, 41)])
            args += [b"%.6f" % lon, b"%.6f" % lat, b"m%d" % i]
        script.append([b"GEOADD", b"g%d" % k, *args])
    for _ in range(150):
        lon = rnd.choice([rnd.uniform(-180, 180), 179.9, -179.9, 10.5, 0.0])
        lat = rnd.choice([rnd.uniform(-85, 85), 84.9, -84.9, 40.5, 0.0])
        if rnd.random() < 0.5:
            by = [b"BYRADIUS", rnd.choice([b"1", b"10", b"100", b"1000", b"5000", b"20000", b"0.5"]), rnd.choice([b"km", b"mi"])]
        else:
            sizes = [b"1", b"100", b"1000", b"5000", b"40000"]
            by = [b"BYBOX", rnd.choice(sizes), rnd.choice(sizes), rnd.choice([b"km", b"mi"])]
        frm = [b"FROMLONLAT", b"%.5f" % lon, b"%.5f" % lat] if rnd.random() < 0.7 else [b"FROMMEMBER", b"m%d" % rnd.randrange(70)]
        opts = rnd.choice([[], [b"WITHDIST"], [b"WITHCOORD", b"WITHDIST", b"WITHHASH"], [b"COUNT", b"3", b"ANY"],
                           [b"COUNT", b"5", b"ANY", b"WITHDIST"], [b"ASC", b"WITHDIST"], [b"DESC", b"WITHDIST", b"COUNT", b"4"]])
        script.append([b"GEOSEARCH", b"g%d" % rnd.randrange(3), *frm, *by, *opts])
    return script


SCRIPTS["grid"] = _grid()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:
    compare(real, Harness(), SCRIPTS[name], _scores_as_numbers)


GEO_AND_SORT = [
    "geoadd", "geopos", "geodist", "geohash", "geosearch", "geosearchstore", "georadius", "georadiusbymember",
    "georadius_ro", "georadiusbymember_ro", "sort", "sort_ro",
]


def test_command_info(real: Any) -> None:
    for name in GEO_AND_SORT:
        info = run_real(real, [b"COMMAND", b"INFO", name.encode()])[0]
        spec = TABLE.lookup(name.encode())
        assert spec.arity == info[1], name
        assert spec.flags == {f.decode() for f in info[2]}, name
        assert (spec.first_key, spec.last_key, spec.key_step) == tuple(info[3:6]), name
    # Movable keys: the STORE destinations, as Redis's COMMAND GETKEYS finds them.
    for argv in (Z("GEORADIUS src 1 2 3 km STORE d1 STOREDIST d2"), Z("GEORADIUSBYMEMBER src m 3 km STORE d1"),
                 Z("SORT src BY w_* LIMIT 0 1 GET o_* STORE dst"), Z("SORT src STORE a STORE b"), Z("SORT_RO src GET x_*")):
        assert run_real(real, [b"COMMAND", b"GETKEYS", *argv]) == TABLE.lookup(argv[0].lower()).keys(argv), argv


def _raw_resp3(sock: socket.socket, args: list[bytes]) -> bytes:
    """One reply's exact bytes from a RESP3 connection."""
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    data = b""
    while True:
        data += sock.recv(65536)
        reader = hiredis.Reader()
        reader.feed(data)
        if reader.gets() is not False:
            return data


def test_resp3_wire(real: Any) -> None:
    kwargs = real.connection_pool.connection_kwargs
    h = Harness()
    with socket.create_connection((kwargs["host"], kwargs["port"])) as sock:
        _raw_resp3(sock, [b"HELLO", b"3"])
        _raw_resp3(sock, [b"FLUSHALL"])
        for args in SETUP + [
            Z("GEOPOS Sicily Palermo nope"), Z("GEODIST Sicily Palermo Catania km"), Z("GEODIST Sicily Palermo nope"),
            Z("GEOHASH Sicily Palermo nope"), Z("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHCOORD WITHHASH ASC"),
            Z("GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 200 km"), Z("GEORADIUS pts 15 37 100 km WITHCOORD COUNT 3"),
            Z("GEOPOS nokey a"),
        ]:
            assert _raw_resp3(sock, args) == h.wire(*args, proto=3), args


_points = st.sampled_from([(b"15.1", b"37.1"), (b"15.2", b"37.2"), (b"14.9", b"36.9"), (b"13", b"36"), (b"-0.5", b"51.5"),
                           (b"179.9", b"0"), (b"-179.9", b"0.1"), (b"0", b"85"), (b"200", b"0"), (b"x", b"1")])
_members = st.sampled_from([b"a", b"b", b"c", b"d"])
_keys = st.sampled_from([b"g1", b"g2"])
_units = st.sampled_from([b"m", b"km", b"mi", b"ft", b"KM"])
_sizes = st.sampled_from([b"0", b"10", b"300", b"5000", b"-1"])
_opts = st.lists(st.sampled_from([[b"WITHDIST"], [b"WITHCOORD"], [b"WITHHASH"], [b"ASC"], [b"DESC"], [b"COUNT", b"2"],
                                  [b"COUNT", b"2", b"ANY"]]), max_size=3).map(lambda parts: [x for p in parts for x in p])


def _cmd():
    center = st.one_of(_points.map(lambda p: [b"FROMLONLAT", *p]), _members.map(lambda m: [b"FROMMEMBER", m]))
    shape = st.one_of(st.tuples(_sizes, _units).map(lambda t: [b"BYRADIUS", *t]),
                      st.tuples(_sizes, _sizes, _units).map(lambda t: [b"BYBOX", *t]))
    return st.one_of(
        st.builds(lambda k, o, pts: [b"GEOADD", k, *o, *[x for p, m in pts for x in (*p, m)]], _keys,
                  st.sampled_from([[], [b"NX"], [b"XX"], [b"CH"], [b"XX", b"CH"]]), st.lists(st.tuples(_points, _members), min_size=1, max_size=3)),
        st.builds(lambda k, c, s, o: [b"GEOSEARCH", k, *c, *s, *o], _keys, center, shape, _opts),
        st.builds(lambda d, k, c, s, o: [b"GEOSEARCHSTORE", d, k, *c, *s, *o], _keys, _keys, center, shape,
                  st.sampled_from([[], [b"STOREDIST"], [b"COUNT", b"1"]])),
        st.builds(lambda k, a, b, u: [b"GEODIST", k, a, b, u], _keys, _members, _members, _units),
        st.builds(lambda k, ms: [b"GEOPOS", k, *ms], _keys, st.lists(_members, min_size=1, max_size=3)),
        st.builds(lambda k, ms: [b"GEOHASH", k, *ms], _keys, st.lists(_members, min_size=1, max_size=3)),
        st.builds(lambda k, m, r, u: [b"GEORADIUSBYMEMBER", k, m, r, u, b"WITHDIST"], _keys, _members, _sizes, _units),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_cmd(), min_size=1, max_size=12))
def test_generated_sequences(real: Any, script: list[list[bytes]]) -> None:
    compare(real, Harness(), script + [[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"] for k in (b"g1", b"g2")], _scores_as_numbers)
