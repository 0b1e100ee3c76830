"""Geo searches (Redis 7.0 src/geo.c georadiusGeneric): GEOSEARCH, GEOSEARCHSTORE,
GEORADIUS, GEORADIUSBYMEMBER and their _RO forms.

As Redis: pick a geohash precision from the search size, look in the centre
box and its eight neighbours (in Redis's order, skipping the ones the area
cannot reach), walk each box's score range in zset order and keep the points
inside the shape. So even unsorted replies come in Redis's order. The geohash
arithmetic is in ``geo``.
"""

from __future__ import annotations

import math

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError
from makod.kv.table import command
from makod.kv.types.geo import (
    CANNOT_DECODE_MEMBER,
    D_R,
    EARTH_RADIUS_M,
    MERCATOR_MAX,
    _area,
    _double,
    _encode,
    _lat_distance,
    _lonlat,
    _member_position,
    _neighbour,
    _unit,
    c_cos,
    coordinate,
    decode_score,
    distance,
    format_distance,
)
from makod.kv.types.zsets import _store, _zset

RADIUS_NEGATIVE = "ERR radius cannot be negative"
BOX_NEGATIVE = "ERR height or width cannot be negative"
COUNT_NOT_POSITIVE = "ERR COUNT must be > 0"
ANY_NEEDS_COUNT = "ERR the ANY argument requires COUNT argument"

# -- searches -----------------------------------------------------------------------------

CIRCLE, BOX = 1, 2
SORT_NONE, SORT_ASC, SORT_DESC = 0, 1, 2
# Variants of the one search (georadiusGeneric's flags).
BY_COORDS, BY_MEMBER, NOSTORE, SEARCH, SEARCHSTORE = 1, 2, 4, 8, 16


_REPLY_FLAGS = (b"withdist", b"withhash", b"withcoord", b"any")
_SORTS = {b"asc": SORT_ASC, b"desc": SORT_DESC}


class Shape:
    __slots__ = ("kind", "lon", "lat", "radius", "width", "height", "to_m")

    def __init__(self) -> None:
        self.kind = 0
        self.lon = self.lat = 0.0
        self.radius = self.width = self.height = 0.0
        self.to_m = 1.0

    def contains(self, lon: float, lat: float) -> float | None:
        """The distance in metres from the centre, or None if outside."""
        if self.kind == CIRCLE:
            d = distance(self.lon, self.lat, lon, lat)
            return None if d > self.radius * self.to_m else d
        if _lat_distance(lat, self.lat) > self.height * self.to_m / 2:
            return None
        if distance(lon, lat, self.lon, lat) > self.width * self.to_m / 2:
            return None
        return distance(self.lon, self.lat, lon, lat)


def _steps_for(range_m: float, lat: float) -> int:
    if range_m == 0:
        return 26
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def _boxes(shape: Shape) -> list[tuple[int, int] | None]:
    """The centre box and its neighbours to search (None: not needed), in Redis's order."""
    if shape.kind == CIRCLE:
        height = width = shape.to_m * shape.radius
        radius_m = shape.radius
    else:
        height = shape.to_m * (shape.height / 2)
        width = shape.to_m * (shape.width / 2)
        radius_m = math.sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2))
    radius_m *= shape.to_m
    lat_delta = height / EARTH_RADIUS_M / D_R
    lon_delta_top = width / EARTH_RADIUS_M / c_cos((shape.lat + lat_delta) * D_R) / D_R
    lon_delta_bottom = width / EARTH_RADIUS_M / c_cos((shape.lat - lat_delta) * D_R) / D_R
    lon_delta = lon_delta_bottom if shape.lat < 0 else lon_delta_top
    min_lon, max_lon = shape.lon - lon_delta, shape.lon + lon_delta
    min_lat, max_lat = shape.lat - lat_delta, shape.lat + lat_delta

    steps = _steps_for(radius_m, shape.lat)
    for attempt in (0, 1):
        bits = _encode(shape.lon, shape.lat, steps)
        # north, south, east, west, north-east, north-west, south-east, south-west
        around = [_neighbour(bits, steps, dlon, dlat) for dlon, dlat in
                  ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))]
        if attempt or steps <= 1:
            break
        north, south = _area(around[0][0], steps), _area(around[1][0], steps)
        east, west = _area(around[2][0], steps), _area(around[3][0], steps)
        if not (north[3] < max_lat or south[2] > min_lat or east[1] < max_lon or west[0] > min_lon):
            break
        steps -= 1  # a neighbour is too near the search area's edge: coarser boxes
    boxes: list[tuple[int, int] | None] = [(bits, steps), *around]
    if steps >= 2:
        lon_lo, lon_hi, lat_lo, lat_hi = _area(bits, steps)
        drop = set()
        if lat_lo < min_lat:
            drop |= {2, 7, 8}  # south, south-east, south-west
        if lat_hi > max_lat:
            drop |= {1, 5, 6}
        if lon_lo < min_lon:
            drop |= {4, 6, 8}  # west, north-west, south-west
        if lon_hi > max_lon:
            drop |= {3, 5, 7}
        boxes = [None if i in drop else b for i, b in enumerate(boxes)]
    return boxes


def _search(z, shape: Shape, limit: int) -> list[tuple[float, float, float, float, bytes]]:
    """Points in the shape as (dist_m, score, lon, lat, member), in Redis's search order."""
    found: list = []
    last = 0
    boxes = _boxes(shape)
    for i, box in enumerate(boxes):
        if box is None:
            continue
        # Huge radii make neighbours coincide: skip a box equal to the one just searched
        # (as Redis, which never compares with the centre box, index 0).
        if last and box == boxes[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        bits, step = box
        lo = bits << (52 - step * 2)
        hi = (bits + 1) << (52 - step * 2)
        order = z.order
        k = order.bisect_left((float(lo),))
        while k < len(order):
            score, member = order[k]
            if score >= hi:
                break
            lon, lat = decode_score(score)
            d = shape.contains(lon, lat)
            if d is not None:
                found.append((d, score, lon, lat, member))
            if found and limit and len(found) >= limit:
                break
            k += 1
        last = i
    return found


def _search_command(ctx, args, src_at: int, flags: int):
    rec = _zset(ctx, args[src_at])
    shape = Shape()
    store = None
    storedist = False
    if flags & BY_COORDS:
        base = 6
        shape.kind = CIRCLE
        shape.lon, shape.lat = _lonlat(args, 2)
        shape.radius, shape.to_m = _radius(args, 4)
    elif flags & BY_MEMBER:
        base = 5
        if rec is not None:
            shape.kind = CIRCLE
            pos = _member_position(rec, args[2])
            if pos is None:
                raise CommandError(CANNOT_DECODE_MEMBER)
            shape.lon, shape.lat = pos
            shape.radius, shape.to_m = _radius(args, 3)
    else:
        base = 2
        if flags & SEARCHSTORE:
            base = 3
            store = args[1]
    seen: set[bytes] = set()
    frommember = fromloc = byradius = bybox = False
    sort = SORT_NONE
    count = 0
    n = len(args)
    i = base
    while i < n:
        a = args[i].lower()
        more = n - i - 1
        if a in _REPLY_FLAGS:
            seen.add(a)
        elif a in _SORTS:
            sort = _SORTS[a]
        elif a == b"count" and more >= 1:
            count = parse_int(args[i + 1])
            if count is None:
                raise CommandError(errors.NOT_INTEGER)
            if count <= 0:
                raise CommandError(COUNT_NOT_POSITIVE)
            i += 1
        elif a in (b"store", b"storedist") and more >= 1 and not flags & (NOSTORE | SEARCH):
            store = args[i + 1]
            storedist = a == b"storedist"
            i += 1
        elif a == b"storedist" and flags & SEARCHSTORE:
            storedist = True
        elif a == b"frommember" and more >= 1 and flags & SEARCH and not fromloc:
            if rec is not None:
                pos = _member_position(rec, args[i + 1])
                if pos is None:
                    raise CommandError(CANNOT_DECODE_MEMBER)
                shape.lon, shape.lat = pos
            frommember = True
            i += 1
        elif a == b"fromlonlat" and more >= 2 and flags & SEARCH and not frommember:
            shape.lon, shape.lat = _lonlat(args, i + 1)
            fromloc = True
            i += 2
        elif a == b"byradius" and more >= 2 and flags & SEARCH and not bybox:
            shape.radius, shape.to_m = _radius(args, i + 1)
            shape.kind = CIRCLE
            byradius = True
            i += 2
        elif a == b"bybox" and more >= 3 and flags & SEARCH and not byradius:
            shape.width = _double(args[i + 1], "ERR need numeric width")
            shape.height = _double(args[i + 2], "ERR need numeric height")
            if shape.width < 0 or shape.height < 0:
                raise CommandError(BOX_NEGATIVE)
            shape.to_m = _unit(args[i + 3])
            shape.kind = BOX
            bybox = True
            i += 3
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    withdist, withhash, withcoord, any_ = (flag in seen for flag in _REPLY_FLAGS)
    name = args[0].decode("utf-8", "replace")
    if store is not None and (withdist or withhash or withcoord):
        what = "GEOSEARCHSTORE" if flags & SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    if flags & SEARCH and not (frommember or fromloc):
        raise CommandError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & SEARCH and not (byradius or bybox):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError(ANY_NEEDS_COUNT)
    if rec is None:
        if store is not None:
            ctx.delete(store)
            return 0
        return []
    if count and sort == SORT_NONE and not any_:
        sort = SORT_ASC  # the N nearest
    found = _search(rec.value, shape, count if any_ else 0)
    if sort != SORT_NONE:
        found.sort(key=lambda p: p[0], reverse=sort == SORT_DESC)
    if count:
        found = found[:count]
    if store is not None:
        return _store(ctx, store, [(d / shape.to_m if storedist else s, m) for d, s, _, _, m in found])
    out = []
    for d, score, lon, lat, member in found:
        if not (withdist or withhash or withcoord):
            out.append(member)
            continue
        item = [member]
        if withdist:
            item.append(format_distance(d / shape.to_m))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append([coordinate(lon), coordinate(lat)])
        out.append(item)
    return out


def _radius(args: list[bytes], j: int) -> tuple[float, float]:
    radius = _double(args[j], "ERR need numeric radius")
    if radius < 0:
        raise CommandError(RADIUS_NEGATIVE)
    return radius, _unit(args[j + 1])


def _georadius_keys(args: list[bytes]) -> list[bytes]:
    """The source and every STORE/STOREDIST destination. Only the last one given
    is written, but routing must know them all (Redis's key specs list the first
    STORE's and the first STOREDIST's)."""
    keys = args[1:2]
    i = 5
    while i + 1 < len(args):
        if args[i].lower() in (b"store", b"storedist"):
            if args[i + 1] not in keys:
                keys.append(args[i + 1])
            i += 1
        i += 1
    return keys


_SEARCH_DOC = "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape"
_RADIUS_DOC = "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index."


@command("geosearch", -7, "readonly", keys=(1, 1, 1), group="geo", summary="Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", since="6.2.0", complexity=_SEARCH_DOC)
def geosearch(ctx, args):
    return _search_command(ctx, args, 1, SEARCH)


@command("geosearchstore", -8, "write denyoom", keys=(1, 2, 1), group="geo", summary="Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", since="6.2.0", complexity=_SEARCH_DOC)
def geosearchstore(ctx, args):
    return _search_command(ctx, args, 2, SEARCH | SEARCHSTORE)


@command("georadius", -6, "write denyoom movablekeys", keys=(1, 1, 1), key_finder=_georadius_keys, group="geo", summary="Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", since="3.2.0", complexity=_RADIUS_DOC)
def georadius(ctx, args):
    return _search_command(ctx, args, 1, BY_COORDS)


@command("georadiusbymember", -5, "write denyoom movablekeys", keys=(1, 1, 1), key_finder=_georadius_keys, group="geo", summary="Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", since="3.2.0", complexity=_RADIUS_DOC)
def georadiusbymember(ctx, args):
    return _search_command(ctx, args, 1, BY_MEMBER)


@command("georadius_ro", -6, "readonly", keys=(1, 1, 1), group="geo", summary="A read-only variant for GEORADIUS", since="3.2.10", complexity=_RADIUS_DOC)
def georadius_ro(ctx, args):
    return _search_command(ctx, args, 1, BY_COORDS | NOSTORE)


@command("georadiusbymember_ro", -5, "readonly", keys=(1, 1, 1), group="geo", summary="A read-only variant for GEORADIUSBYMEMBER", since="3.2.10", complexity=_RADIUS_DOC)
def georadiusbymember_ro(ctx, args):
    return _search_command(ctx, args, 1, BY_MEMBER | NOSTORE)
