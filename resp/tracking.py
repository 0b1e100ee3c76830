"""Client-side caching: CLIENT TRACKING's state and this node's tracking table.

As Redis 7 does it (https://redis.io/docs/manual/client-side-caching/,
src/tracking.c): in the default mode a tracking client's read-only commands
remember their keys in a table (key -> client ids, whatever the database);
when a key changes, each client that read it gets one ``invalidate`` push
with that key and forgets it, until it reads the key again. In BCAST mode a
client names key prefixes instead and gets, for every batch of changes, the
changed keys under each of its prefixes. A flush sends a null ``invalidate``
(drop everything). OPTIN and OPTOUT make the remembering per command (CLIENT
CACHING yes/no); NOLOOP skips the client's own writes; REDIRECT sends the
messages to another connection (as RESP2 pub/sub messages on
``__redis__:invalidate`` when that one speaks RESP2 and is subscribed).

What changed comes from every node: the writes of a transaction are
reported where it is released (its leader or coordinator) and sent to the
nodes whose clients track (makod/net/tracking_sync.py), which also flushes
this table when it may have missed some. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError
from resp.pubsub import Wire

INVALIDATE_CHANNEL = b"__redis__:invalidate"
# Redis's tracking-table-max-keys default: past it, keys are invalidated to make room.
DEFAULT_MAX_KEYS = 1_000_000


class ClientTracking:
    """One connection's CLIENT TRACKING settings."""

    __slots__ = ("bcast", "optin", "optout", "noloop", "caching", "redirect", "prefixes", "broken")

    def __init__(self) -> None:
        self.bcast = self.optin = self.optout = self.noloop = False
        self.caching = False  # CLIENT CACHING given for the next command
        self.redirect = 0  # client id; 0: this connection
        self.prefixes: list[bytes] = []  # BCAST
        self.broken = False  # the redirect target is gone

    def flags(self) -> list[str]:
        out = ["on"]
        if self.bcast:
            out.append("bcast")
        if self.optin:
            out.append("optin")
            if self.caching:
                out.append("caching-yes")
        if self.optout:
            out.append("optout")
            if self.caching:
                out.append("caching-no")
        if self.noloop:
            out.append("noloop")
        if self.broken:
            out.append("broken_redirect")
        return out

    def remembers_reads(self) -> bool:
        """Do this command's reads go into the table (the OPTIN/OPTOUT rule)?"""
        if self.bcast:
            return False
        if self.optin:
            return self.caching
        if self.optout:
            return not self.caching
        return True


def parse_tracking(argv: list[bytes], current: ClientTracking | None,
                   client_exists: Callable[[int], bool]) -> ClientTracking | None:
    """CLIENT TRACKING ON|OFF [options]: the new settings (None: off), or the
    CommandError Redis 7.0 answers (checked in its order)."""
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        more = i + 1 < len(argv)
        if opt == b"redirect" and more:
            i += 1
            if redirect != 0:
                raise CommandError("ERR A client can only redirect to a single other client")
            value = parse_int(argv[i])
            if value is None:
                raise CommandError(errors.NOT_INTEGER)
            if not client_exists(value):
                raise CommandError("ERR The client ID you want redirect to does not exist")
            redirect = value
        elif opt == b"bcast":
            bcast = True
        elif opt == b"optin":
            optin = True
        elif opt == b"optout":
            optout = True
        elif opt == b"noloop":
            noloop = True
        elif opt == b"prefix" and more:
            i += 1
            prefixes.append(argv[i])
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    mode = argv[2].lower()
    if mode == b"off":
        return None
    if mode != b"on":
        raise CommandError(errors.SYNTAX)
    if prefixes and not bcast:
        raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
    if current is not None and current.bcast != bcast:
        raise CommandError("ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                           "and then re-enabling it with a different mode.")
    if bcast and (optin or optout):
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if optin and optout:
        raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if current is not None and ((optin and current.optout) or (optout and current.optin)):
        raise CommandError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                           "and then re-enabling it with a different mode.")
    old_prefixes = current.prefixes if current is not None else []
    if bcast and prefixes:
        _check_overlaps(old_prefixes, prefixes)
    state = ClientTracking()
    state.bcast, state.optin, state.optout, state.noloop = bcast, optin, optout, noloop
    state.redirect = redirect
    if bcast:
        # Enabling again adds prefixes (Redis keeps the old ones); none means every key.
        state.prefixes = list(old_prefixes)
        seen = set(old_prefixes)
        for prefix in prefixes or ([b""] if not old_prefixes else []):
            if prefix not in seen:
                seen.add(prefix)
                state.prefixes.append(prefix)
    return state


# Past this many prefix comparisons the overlap check stops following
# Redis's quadratic loop (which would hold the event loop for minutes with
# 100,000 prefixes) and sorts instead: the same verdict, though it may name
# another overlapping pair than Redis would.
EXACT_OVERLAP_CHECKS_MAX = 200_000


def _check_overlaps(old_prefixes: list[bytes], prefixes: list[bytes]) -> None:
    """No new prefix may overlap (one a prefix of the other, or equal) an
    existing one or another new one: the CommandError Redis 7.0 answers."""
    n = len(prefixes)
    existing = sorted(old_prefixes)  # Redis walks them in its radix tree's order
    if n * (n + len(existing)) > EXACT_OVERLAP_CHECKS_MAX:
        pair = _some_overlap(existing, prefixes)
        if pair is None:
            return
        i, other, other_is_existing = pair
        _raise_overlap(prefixes[i], other, other_is_existing)
    for j, prefix in enumerate(prefixes):
        for old in existing:
            if _overlap(old, prefix):
                _raise_overlap(prefix, old, True)
        for other in prefixes[j + 1:]:
            if _overlap(prefix, other):
                _raise_overlap(prefix, other, False)


def _some_overlap(existing: list[bytes], prefixes: list[bytes]) -> tuple[int, bytes, bool] | None:
    """An overlapping pair in O(n log n), or None. If p is a prefix of q,
    every string sorted between them starts with p too, so p overlaps its
    successor: checking neighbours finds an overlap whenever there is one.
    (Existing prefixes never overlap each other: they passed this check.)"""
    tagged = sorted([(p, 0, k) for k, p in enumerate(existing)] + [(p, 1, i) for i, p in enumerate(prefixes)])
    for (a, a_new, a_at), (b, b_new, b_at) in zip(tagged, tagged[1:]):
        if not b.startswith(a) or not (a_new or b_new):
            continue
        if not a_new:
            return b_at, a, True
        if not b_new:
            return a_at, b, True
        first, second = (a_at, b) if a_at < b_at else (b_at, a)
        return first, second, False
    return None


def _raise_overlap(prefix: bytes, other: bytes, other_is_existing: bool) -> None:
    what = "an existing prefix" if other_is_existing else "another provided prefix"
    raise CommandError(f"ERR Prefix '{_text(prefix)}' overlaps with {what} '{_text(other)}'. "
                       "Prefixes for a single client must not overlap.")


def _overlap(a: bytes, b: bytes) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class TrackingTable:
    """This node's tracking clients and the keys they read.

    ``find_session(id)`` looks a connection up (for REDIRECT); ``wake(sessions)``
    tells the server they have output. Messages go through ``session.deliver``,
    which puts them after the replies of the commands that arrived before:
    a read whose key was remembered when it was dispatched gets its reply
    before any invalidation of that key, so a client never caches a value
    after being told it changed.
    """

    def __init__(self, find_session: Callable[[int], Any], wake: Callable[[list[Any]], None],
                 max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.find_session = find_session
        self.wake = wake
        self.max_keys = max_keys  # 0: no limit
        self.clients: dict[int, Any] = {}  # id -> session, every tracking client
        self.keys: dict[bytes, dict[int, None]] = {}  # key -> ids of the clients that read it
        self.items = 0  # (key, client) pairs in ``keys``
        self.prefixes: dict[bytes, dict[int, None]] = {}  # BCAST prefix -> client ids
        # How many prefixes have each length (sorted lengths cached): a changed
        # key looks up only its own first bytes at those lengths, so a client
        # with 100,000 prefixes does not make every write scan them all.
        self.prefix_lengths: dict[int, int] = {}
        self._lengths_sorted: list[int] | None = []
        self.invalidations_sent = 0
        self.started: Callable[[], None] | None = None  # called when a first client starts tracking

    @property
    def active(self) -> bool:
        return bool(self.clients)

    def enable(self, session: Any, state: ClientTracking) -> None:
        old = session.tracking
        if old is not None and old.bcast:
            self._drop_prefixes(session.id, old.prefixes)
        session.tracking = state
        first = not self.clients
        self.clients[session.id] = session
        for prefix in state.prefixes:
            ids = self.prefixes.get(prefix)
            if ids is None:
                ids = self.prefixes[prefix] = {}
                self.prefix_lengths[len(prefix)] = self.prefix_lengths.get(len(prefix), 0) + 1
                self._lengths_sorted = None
            ids[session.id] = None
        if first and self.started is not None:
            self.started()

    def disable(self, session: Any) -> None:
        state = session.tracking
        if state is None:
            return
        session.tracking = None
        self.clients.pop(session.id, None)
        if state.bcast:
            self._drop_prefixes(session.id, state.prefixes)
        # Its ids stay in ``keys`` until those keys change, as in Redis (cheap to skip then).

    def _drop_prefixes(self, client_id: int, prefixes: Iterable[bytes]) -> None:
        for prefix in prefixes:
            ids = self.prefixes.get(prefix)
            if ids is not None:
                ids.pop(client_id, None)
                if not ids:
                    del self.prefixes[prefix]
                    left = self.prefix_lengths.pop(len(prefix)) - 1
                    if left:
                        self.prefix_lengths[len(prefix)] = left
                    self._lengths_sorted = None

    # -- what a tracking client's commands do --------------------------------------------------------
    def remember(self, session: Any, keys: Iterable[bytes]) -> None:
        client_id = session.id
        table = self.keys
        for key in keys:
            ids = table.get(key)
            if ids is None:
                ids = table[key] = {}
            if client_id not in ids:
                ids[client_id] = None
                self.items += 1
        if self.max_keys and len(table) > self.max_keys:
            self._make_room()

    def forget(self, session: Any, keys: Iterable[bytes]) -> None:
        """NOLOOP: the client writes these keys itself; it is told nothing
        about them (and no longer tracks them, as in Redis)."""
        for key in keys:
            ids = self.keys.get(key)
            if ids is not None and ids.pop(session.id, 0) is None:
                self.items -= 1
                if not ids:
                    del self.keys[key]

    def _make_room(self) -> None:
        """Past tracking-table-max-keys: invalidate the oldest keys (Redis picks at random)."""
        excess = len(self.keys) - self.max_keys
        self.invalidate([key for _, key in zip(range(excess), self.keys)], bcast=False)

    # -- changes -----------------------------------------------------------------------------------
    def invalidate(self, keys: list[bytes], bcast: bool = True) -> None:
        """These keys changed (anywhere in the cluster)."""
        woken: list[Any] = []
        table = self.keys
        clients = self.clients
        for key in keys:
            ids = table.pop(key, None)
            if ids is None:
                continue
            self.items -= len(ids)
            for client_id in ids:
                session = clients.get(client_id)
                if session is None or session.tracking is None or session.tracking.bcast:
                    continue
                self._send(session, [key], woken)
        if bcast and self.prefixes:
            found = self._by_prefix(keys)
            for prefix in sorted(found):  # Redis walks its prefix radix tree: sorted
                for client_id in self.prefixes[prefix]:
                    self._send(clients[client_id], found[prefix], woken)
        if woken:
            self.wake(woken)

    def _by_prefix(self, keys: list[bytes]) -> dict[bytes, list[bytes]]:
        """The changed keys under each registered prefix (in the keys' order)."""
        prefixes = self.prefixes
        found: dict[bytes, list[bytes]] = {}
        lengths = self._lengths_sorted
        if lengths is None:
            lengths = self._lengths_sorted = sorted(self.prefix_lengths)
        for key in keys:
            size = len(key)
            for length in lengths:
                if length > size:
                    break
                head = key[:length]
                if head in prefixes:
                    found.setdefault(head, []).append(key)
        return found

    def flush_all(self) -> None:
        """Everything may have changed (a FLUSHALL, or changes this node may
        have missed): every tracking client drops its whole cache."""
        woken: list[Any] = []
        for session in list(self.clients.values()):
            self._send(session, None, woken)
        self.keys = {}
        self.items = 0
        if woken:
            self.wake(woken)

    def _send(self, session: Any, keys: list[bytes] | None, woken: list[Any]) -> None:
        state = session.tracking
        target = session
        if state.redirect:
            target = self.find_session(state.redirect)
            if target is None or target.closing:
                state.broken = True
                if session.proto >= 3:
                    session.deliver(Wire([b"tracking-redir-broken", state.redirect]))
                    woken.append(session)
                return
            if target.proto < 3:
                if not target.is_pubsub:
                    return  # RESP2 has no push messages outside pub/sub
                target.deliver(Wire([b"message", INVALIDATE_CHANNEL, keys]))
                woken.append(target)
                self.invalidations_sent += 1
                return
        elif session.proto < 3:
            return
        target.deliver(Wire([b"invalidate", keys]))
        woken.append(target)
        self.invalidations_sent += 1
