"""Geo commands (Redis 7.0 src/geo.c, geohash.c, geohash_helper.c semantics).

A geo key is a sorted set, exactly as in Redis: a member's score is the
52-bit geohash of its position (latitude bits at even positions, longitude
bits at odd ones, 26 of each over [-85.05112878, 85.05112878] x [-180, 180]).
TYPE says zset and every zset command works on it. GEOADD writes through
ZADD's code (so the ``zadd`` op, its undo and replication); the STORE forms
replace the destination with ``ctx.set`` as ZRANGESTORE does.

A search works as Redis's does, so that even unsorted replies come in
Redis's order: pick a geohash precision from the radius, look in the centre
box and its eight neighbours (in Redis's order, skipping useless ones), take
each box's score range in zset order, keep the points inside the shape.
The float arithmetic follows Redis's operation by operation (Python floats
are C doubles, ``math`` is the same libm), so distances and coordinates
print the same digits.

Scores that are not geohashes (a zset written by ZADD with negative, huge
or fractional scores) decode as Redis's C cast to uint64 does on x86-64.
"""

from __future__ import annotations

import math

from makod.kv import errors
from makod.kv.errors import CommandError
from makod.kv.replies import NULL_ARRAY, Double
from makod.kv.table import command
from makod.kv.types.zsets import _zadd, _zset, parse_double_strict

LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LON_MIN, LON_MAX = -180.0, 180.0
STEP_MAX = 26  # 26 bits per coordinate: 52-bit scores, exact in a double
D_R = math.pi / 180.0
EARTH_RADIUS_M = 6372797.560856
MERCATOR_MAX = 20037726.37
MASK64 = (1 << 64) - 1
EVEN_BITS = 0x5555555555555555
ODD_BITS = 0xAAAAAAAAAAAAAAAA
GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}

UNSUPPORTED_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
CANNOT_DECODE_MEMBER = "ERR could not decode requested zset member"


# -- geohash ------------------------------------------------------------------------------


def _spread(v: int) -> int:
    """The 32 bits of v at the even bit positions of a 64-bit word."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & EVEN_BITS


def _squash(v: int) -> int:
    """The even bits of v packed into 32 bits (the inverse of ``_spread``)."""
    v &= EVEN_BITS
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0xFFFFFFFF


def _encode(lon: float, lat: float, step: int, lat_min: float = LAT_MIN, lat_max: float = LAT_MAX) -> int:
    """The geohash of a valid position at ``step`` bits per coordinate."""
    lat_offset = (lat - lat_min) / (lat_max - lat_min) * float(1 << step)
    lon_offset = (lon - LON_MIN) / (LON_MAX - LON_MIN) * float(1 << step)
    return _spread(int(lat_offset)) | (_spread(int(lon_offset)) << 1)


def _area(bits: int, step: int) -> tuple[float, float, float, float]:
    """(lon_min, lon_max, lat_min, lat_max) of a geohash box."""
    ilat = _squash(bits)
    ilon = _squash(bits >> 1)
    cells = float(1 << step)
    lat_scale = LAT_MAX - LAT_MIN
    lon_scale = LON_MAX - LON_MIN
    return (
        LON_MIN + (ilon * 1.0 / cells) * lon_scale,
        LON_MIN + ((ilon + 1) * 1.0 / cells) * lon_scale,
        LAT_MIN + (ilat * 1.0 / cells) * lat_scale,
        LAT_MIN + ((ilat + 1) * 1.0 / cells) * lat_scale,
    )


def _cvttsd2si(v: float) -> int:
    """x86-64's double -> int64 truncation; out of range gives 0x8000000000000000."""
    if math.isfinite(v) and -(2.0**63) <= v < 2.0**63:
        return int(v) & MASK64
    return 1 << 63


def _to_uint64(v: float) -> int:
    """C's (uint64_t) cast of a double as gcc compiles it on x86-64 (what Redis
    does to a score; defined only for 0 <= v < 2**64, but ZADD allows any)."""
    if v < 2.0**63:
        return _cvttsd2si(v)
    return _cvttsd2si(v - 2.0**63) ^ (1 << 63)


def decode_score(score: float) -> tuple[float, float]:
    """(longitude, latitude) of a zset score: the centre of its 52-bit box."""
    bits = _to_uint64(score)
    lon_min, lon_max, lat_min, lat_max = _area(bits, STEP_MAX)
    lon = min(max((lon_min + lon_max) / 2, LON_MIN), LON_MAX)
    lat = min(max((lat_min + lat_max) / 2, LAT_MIN), LAT_MAX)
    return lon, lat


def _move(bits: int, step: int, d: int, lon_axis: bool) -> int:
    """The neighbouring box ``d`` (+1/-1) along one axis, wrapping around."""
    if d == 0:
        return bits
    mine, other = (ODD_BITS, EVEN_BITS) if lon_axis else (EVEN_BITS, ODD_BITS)
    x = bits & mine
    y = bits & other
    zz = other >> (64 - step * 2)
    x = x + (zz + 1) if d > 0 else (x | zz) - (zz + 1)
    x &= MASK64 & (mine >> (64 - step * 2))
    return x | y


def _neighbour(bits: int, step: int, dlon: int, dlat: int) -> tuple[int, int]:
    return _move(_move(bits, step, dlon, True), step, dlat, False), step


def c_cos(x: float) -> float:
    """C's cos: NaN for an infinite argument (Python raises)."""
    return math.cos(x) if math.isfinite(x) else math.nan


def _c_asin(x: float) -> float:
    """C's asin: NaN outside [-1, 1] (rounding can put a haversine just past 1)."""
    return math.asin(x) if -1.0 <= x <= 1.0 else math.nan


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine distance in metres (geohashGetDistance)."""
    lon1r = lon1 * D_R
    lon2r = lon2 * D_R
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return _lat_distance(lat1, lat2)
    lat1r = lat1 * D_R
    lat2r = lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_M * _c_asin(math.sqrt(a))


def _lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_M * abs(lat2 * D_R - lat1 * D_R)


# -- replies ------------------------------------------------------------------------------


def format_distance(d: float) -> bytes:
    """A distance with 4 decimals, rounded half to even (fixedpoint_d2string)."""
    if d == 0:
        return b"0.0000"
    scaled = d * 10000.0
    # llrint: the nearest integer; NaN, infinities and overflow give LLONG_MIN.
    v = round(scaled) if math.isfinite(scaled) and abs(scaled) < 2.0**63 else -(1 << 63)
    sign = b"-" if v < 0 else b""
    whole, frac = divmod(abs(v), 10000)
    return b"%s%d.%04d" % (sign, whole, frac)


def coordinate(v: float) -> Double:
    """A coordinate as Redis sends it: ``%.17Lf`` with trailing zeros cut."""
    text = b"%.17f" % v
    text = text.rstrip(b"0").rstrip(b".")
    if text == b"-0":
        text = b"0"
    return Double(v, text)


# -- arguments ----------------------------------------------------------------------------


def _double(s: bytes, error: str = errors.NOT_FLOAT) -> float:
    v = parse_double_strict(s)
    if v is None:
        raise CommandError(error)
    return v


def _lonlat(args: list[bytes], j: int) -> tuple[float, float]:
    lon, lat = _double(args[j]), _double(args[j + 1])
    if lon < LON_MIN or lon > LON_MAX or lat < LAT_MIN or lat > LAT_MAX:
        raise CommandError("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _unit(s: bytes) -> float:
    to_m = UNITS.get(s.lower())
    if to_m is None:
        raise CommandError(UNSUPPORTED_UNIT)
    return to_m


def _member_position(rec, member: bytes) -> tuple[float, float] | None:
    score = None if rec is None else rec.value.scores.get(member)
    return None if score is None else decode_score(score)


# -- GEOADD / GEOPOS / GEODIST / GEOHASH --------------------------------------------------


@command("geoadd", -5, "write denyoom", keys=(1, 1, 1), group="geo", summary="Add one or more geospatial items in the geospatial index represented using a sorted set", since="3.2.0", complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.")
def geoadd(ctx, args):
    j = 2
    nx = xx = False
    while j < len(args):
        opt = args[j].lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt != b"ch":
            break
        j += 1
    if (len(args) - j) % 3 or (nx and xx):
        raise CommandError(errors.SYNTAX)
    zadd_args = [b"zadd", *args[1:j]]
    for k in range(j, len(args), 3):
        lon, lat = _lonlat(args, k)
        zadd_args += [b"%d" % (_encode(lon, lat, STEP_MAX) << (52 - STEP_MAX * 2)), args[k + 2]]
    return _zadd(ctx, zadd_args, False)


def _positions(ctx, args) -> list[tuple[float, float] | None]:
    """GEOPOS's and GEOHASH's members' positions (None: no such member)."""
    rec = _zset(ctx, args[1])
    return [_member_position(rec, member) for member in args[2:]]


@command("geopos", -2, "readonly", keys=(1, 1, 1), group="geo", summary="Returns longitude and latitude of members of a geospatial index", since="3.2.0", complexity="O(N) where N is the number of members requested.")
def geopos(ctx, args):
    return [NULL_ARRAY if pos is None else [coordinate(pos[0]), coordinate(pos[1])] for pos in _positions(ctx, args)]


@command("geodist", -4, "readonly", keys=(1, 1, 1), group="geo", summary="Returns the distance between two members of a geospatial index", since="3.2.0", complexity="O(1)")
def geodist(ctx, args):
    to_m = 1.0
    if len(args) == 5:
        to_m = _unit(args[4])
    elif len(args) > 5:
        raise CommandError(errors.SYNTAX)
    rec = _zset(ctx, args[1])
    a = _member_position(rec, args[2])
    b = _member_position(rec, args[3])
    if a is None or b is None:
        return None
    return format_distance(distance(a[0], a[1], b[0], b[1]) / to_m)


def _standard_geohash(pos: tuple[float, float]) -> bytes:
    # The standard geohash spans latitudes -90..90, not Redis's -85..85: re-encode.
    bits = _encode(pos[0], pos[1], STEP_MAX, -90.0, 90.0)
    chars = bytes(GEOALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10))
    return chars + b"0"  # 52 bits make 10 characters and 2 bits: Redis pads with '0'


@command("geohash", -2, "readonly", keys=(1, 1, 1), group="geo", summary="Returns members of a geospatial index as standard geohash strings", since="3.2.0", complexity="O(log(N)) for each member requested, where N is the number of elements in the sorted set.")
def geohash(ctx, args):
    return [None if pos is None else _standard_geohash(pos) for pos in _positions(ctx, args)]
