"""Sans-I/O parser for RESP *requests* (what clients send to the server).

``RequestParser.feed(data)`` buffers bytes and returns every command that is
now complete; no socket, no asyncio, no clock in here (the h11 shape). The
connection code around it only feeds what it reads and runs what comes out.

Semantics follow Redis 7 (src/networking.c: ``processInputBuffer``,
``processMultibulkBuffer``, ``processInlineBuffer``; src/sds.c:
``sdssplitargs``; src/util.c: ``string2ll``):

* A command whose first byte is ``*`` is a multibulk request:
  ``*<n>\\r\\n`` then n times ``$<len>\\r\\n<len bytes>\\r\\n``. ``n <= 0``
  yields no command. Numbers are parsed like ``string2ll``: optional ``-``,
  no ``+``, no spaces, no leading zeros.
* Any other first byte starts an inline command: one line ending in ``\\n``
  (an optional ``\\r`` before it is dropped), split like ``sdssplitargs``.
* Declared lengths are checked the moment their header line is complete, so
  a client declaring a 1 TB bulk is refused at once instead of being buffered
  for.

Deliberate differences from Redis (each keeps the result independent of how
the bytes were split across reads, which Redis's own checks are not):

* Header and inline lines are limited by their own length: a line longer than
  ``INLINE_MAX_LEN`` is "too big ..." even when its line end arrived in the
  same read (Redis only looks at the buffered length when no line end is
  buffered yet, and otherwise reports the long line as an invalid length or
  parses it).
* NUL bytes are ordinary bytes everywhere. (Redis looks for line ends with
  ``strchr``, which stops at a NUL, so an inline line or header containing
  one is never seen as complete.)
* The multibulk count is capped at ``max_multibulk_len`` (Redis: INT_MAX).
* Redis's auth-dependent limits ("unauthenticated multibulk length" for more
  than 10 arguments, "unauthenticated bulk length" over 16 KB before AUTH)
  are not applied here: the parser does not know about authentication.

Like Redis, the two bytes after a bulk payload are skipped without checking
that they are ``\\r\\n``, and the byte after a header's ``\\r`` is not checked
to be ``\\n``.
"""

from __future__ import annotations

import re

from makod.kv.errors import (
    PROTO_INVALID_BULK,
    PROTO_INVALID_MULTIBULK,
    PROTO_TOO_BIG_BULK,
    PROTO_TOO_BIG_INLINE,
    PROTO_TOO_BIG_MBULK,
    PROTO_UNBALANCED_QUOTES,
    ProtocolError,
    proto_expected_dollar,
)

# Redis's proto-max-bulk-len default: the largest single argument accepted.
DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024
# Arguments per command. Redis accepts up to INT_MAX; a bound keeps a single
# header line from committing the server to an unbounded argument list.
DEFAULT_MAX_MULTIBULK_LEN = 1024 * 1024
# Redis's PROTO_INLINE_MAX_SIZE: the longest inline command, and also the
# longest ``*<n>`` / ``$<len>`` header line, that is waited for.
INLINE_MAX_LEN = 64 * 1024

# string2ll accepts at most 20 characters (LONG_STR_SIZE is 21). Checking the
# length first also keeps int() away from Python's 4300-digit limit.
_LL_MAX_CHARS = 20
_LL_MIN = -(2**63)
_LL_MAX = 2**63 - 1

# Headers that are valid, canonical and common are looked up instead of
# parsed: one dict lookup checks the type byte and the number at once. Any
# miss falls back to the strict parser, so these tables only affect speed.
_BULK_HEADER_CACHE = 16 * 1024
_MBULK_HEADER_CACHE = 1024
_BULK_HEADERS = {b"$%d" % i: i for i in range(_BULK_HEADER_CACHE)}
_MBULK_HEADERS = {b"*%d" % i: i for i in range(1, _MBULK_HEADER_CACHE)}

# The fast path splits at most this many bytes at once (one socket read is
# usually smaller), bounding the memory of one split.
_FAST_WINDOW = 64 * 1024

_STAR = ord("*")
_DOLLAR = ord("$")


def _string2ll(text: bytes) -> int | None:
    """Redis's string2ll: a base-10 long long with no sign but ``-``, no
    spaces and no leading zeros; None when ``text`` is not one."""
    if not text or len(text) > _LL_MAX_CHARS:
        return None
    if text == b"0":
        return 0
    digits = text[1:] if text[0] == 0x2D else text  # '-'
    # bytes.isdigit() is ASCII-only, unlike int(), which also takes spaces,
    # '+', '_' and leading zeros.
    if not digits or not digits.isdigit() or digits[0] == 0x30:  # '0'
        return None
    value = int(text)
    if value < _LL_MIN or value > _LL_MAX:
        return None
    return value


# -- inline commands (sdssplitargs) -----------------------------------------
# C isspace() in the C locale; sdssplitargs skips these between arguments
# and requires one after a closing quote.
_ISSPACE = b" \t\n\r\x0b\x0c"
_BLANKS = re.compile(rb"[ \t\n\r\x0b\x0c]*")
# An unquoted run ends at a space, tab, CR, LF (not at \v or \f) or a quote.
_BARE = re.compile(rb"[^ \t\n\r\"']*")
# "...": backslash escapes any byte. Written as an unrolled loop so a failed
# match (an unterminated quote) backtracks in linear time.
_DOUBLE_QUOTED = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
# '...': only \' is an escape; a backslash before anything else is literal.
_SINGLE_QUOTED = re.compile(rb"'([^'\\]*(?:\\(?:'|(?!'))[^'\\]*)*)'", re.DOTALL)
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_ESCAPED = {
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"b": b"\b",
    b"a": b"\a",
}
# Lines without these split exactly like bytes.split() (which separates on
# space, \t, \n, \r, \v, \f; sdssplitargs only skips \v and \f between
# arguments and keeps them inside one).
_NEEDS_SLOW_SPLIT = re.compile(rb"[\"'\x0b\x0c]")


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if len(code) == 3:
        return bytes((int(code[1:], 16),))
    return _ESCAPED.get(code, code)


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline command line into arguments like Redis's sdssplitargs.

    Returns None for unbalanced quotes (or a closing quote followed by
    something other than a space). ``line`` has no trailing newline.
    """
    if _NEEDS_SLOW_SPLIT.search(line) is None:
        return line.split()
    args: list[bytes] = []
    pos = 0
    end = len(line)
    while True:
        pos = _BLANKS.match(line, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return args
        bare = _BARE.match(line, pos)
        arg = bare.group()  # type: ignore[union-attr]
        pos = bare.end()  # type: ignore[union-attr]
        if pos < end:
            quote = line[pos]
            if quote == 0x22:  # '"'
                quoted = _DOUBLE_QUOTED.match(line, pos)
                if quoted is None:
                    return None
                arg += _ESCAPE.sub(_unescape, quoted.group(1))
            elif quote == 0x27:  # "'"
                quoted = _SINGLE_QUOTED.match(line, pos)
                if quoted is None:
                    return None
                arg += quoted.group(1).replace(b"\\'", b"'")
            else:
                quoted = None  # the run ended at a separator
            if quoted is not None:
                pos = quoted.end()
                if pos < end and line[pos] not in _ISSPACE:
                    return None
        args.append(arg)


# -- the parser ---------------------------------------------------------------
class RequestParser:
    """Incremental RESP request parser for one connection.

    ``feed(data)`` returns the commands completed by ``data`` (each a list of
    bytes arguments, the name as sent). On malformed input it returns the
    commands completed before the bad spot and sets ``error`` to a
    ``ProtocolError``; from then on ``feed`` returns ``[]`` (Redis replies
    with the error and closes the connection).

    Between reads the parser keeps only what it must: the arguments already
    parsed for an incomplete command, and the bytes of the one element (a
    header line or a bulk payload) still being read, as a list of chunks.
    Every byte is therefore copied a bounded number of times however the
    input is split, and a large value arriving in many reads costs O(size).
    """

    # Tests turn the bulk fast path off to check it against the general loop.
    _use_fast = True

    def __init__(
        self,
        max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
        max_multibulk_len: int = DEFAULT_MAX_MULTIBULK_LEN,
    ) -> None:
        assert max_bulk_len >= 0 and max_multibulk_len >= 1
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.error: ProtocolError | None = None
        # The header caches hold only valid lengths; trim them to the limits.
        if max_bulk_len >= _BULK_HEADER_CACHE - 1:
            self._bulk_headers = _BULK_HEADERS
        else:
            self._bulk_headers = {k: v for k, v in _BULK_HEADERS.items() if v <= max_bulk_len}
        if max_multibulk_len >= _MBULK_HEADER_CACHE - 1:
            self._mbulk_headers = _MBULK_HEADERS
        else:
            self._mbulk_headers = {
                k: v for k, v in _MBULK_HEADERS.items() if v <= max_multibulk_len
            }
        # The command being read: its arguments so far and how many remain
        # (0 between commands).
        self._args: list[bytes] = []
        self._left = 0
        # Unparsed bytes, oldest first, and their total length. They start at
        # a command or element boundary, or at a bulk payload (see _bulk).
        self._chunks: list[bytes] = []
        self._held = 0
        # What the held bytes wait for; exactly one applies while _chunks is
        # not empty:
        #   _bulk >= 0: a payload of that many bytes (plus 2), chunks start at it;
        #   _line_end: a line end byte, chunks start at the line;
        #   _need: at least that many bytes in total.
        self._bulk = -1
        self._line_end: bytes | None = None
        self._line_error = ""
        self._need = 0

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete input: unparsed bytes plus the
        arguments already parsed for the command not yet complete."""
        held = self._held
        if self._left:
            held += sum(map(len, self._args))
        return held

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Buffer ``data``; return every command that is now complete, in order."""
        if self.error is not None or not data:
            return []
        if type(data) is not bytes:
            data = bytes(data)
        out: list[list[bytes]] = []
        try:
            if self._chunks:
                data = self._resume(data, out)
                if not data:
                    return out
            self._parse(data, out)
        except ProtocolError as exc:
            self.error = exc
            self._args = []
            self._left = 0
            self._chunks = []
            self._held = 0
        return out

    # -- internals -------------------------------------------------------------
    def _resume(self, data: bytes, out: list[list[bytes]]) -> bytes:
        """Add ``data`` to the held bytes; return what is left to parse
        (b"" while still waiting)."""
        chunks = self._chunks
        held = self._held
        size = len(data)
        bulk = self._bulk
        if bulk >= 0:
            # Waiting for a payload: hand it over without first joining the
            # payload and the rest of the read (a 100 MB value is copied once).
            need = bulk + 2
            if held + size < need:
                chunks.append(data)
                self._held = held + size
                return b""
            if held < bulk:
                chunks.append(data[: bulk - held])
                arg = b"".join(chunks)
            else:
                # The payload is all held; at most its first trailing byte is too.
                arg = b"".join(chunks)[:bulk]
            rest = data[need - held :]
            self._clear_held()
            self._args.append(arg)
            self._left -= 1
            if not self._left:
                out.append(self._args)
                self._args = []
            return rest
        line_end = self._line_end
        if line_end is not None:
            if data.find(line_end) < 0:
                chunks.append(data)
                self._held = held = held + size
                if held > INLINE_MAX_LEN:
                    raise ProtocolError(self._line_error)
                return b""
        elif held + size < self._need:
            chunks.append(data)
            self._held = held + size
            return b""
        chunks.append(data)
        data = b"".join(chunks)
        self._clear_held()
        return data

    def _clear_held(self) -> None:
        self._chunks = []
        self._held = 0
        self._bulk = -1
        self._line_end = None
        self._need = 0

    def _hold(self, data: bytes, start: int, *, bulk: int = -1, line_end: bytes | None = None,
              line_error: str = "", need: int = 0) -> None:
        rest = data[start:]
        self._chunks = [rest]
        self._held = len(rest)
        self._bulk = bulk
        self._line_end = line_end
        self._line_error = line_error
        self._need = need

    def _parse(self, buf: bytes, out: list[list[bytes]]) -> None:
        """Parse ``buf`` (which starts where the held state says) as far as it
        goes; hold any incomplete tail. Raises ProtocolError."""
        end = len(buf)
        pos = 0
        args = self._args
        left = self._left
        find = buf.find
        bulk_headers = self._bulk_headers
        emit = out.append
        try_fast = self._use_fast
        while True:
            if not left:
                # A command boundary. (The loop keeps the command state in
                # locals; self._left and self._args are written only when
                # parsing stops, so a boundary must reset self._left.)
                if try_fast:
                    # Once per feed: small, canonical commands are split off
                    # in bulk; this loop takes over where that stops.
                    try_fast = False
                    pos = self._fast(buf, pos, out)
                if pos >= end:
                    self._left = 0
                    return
                if buf[pos] != _STAR:
                    self._left = 0
                    pos = self._inline(buf, pos, out)
                    if pos < 0:
                        return
                    continue
                nl = find(b"\r", pos)
                if nl < 0 or nl - pos > INLINE_MAX_LEN:
                    if nl - pos > INLINE_MAX_LEN or end - pos > INLINE_MAX_LEN:
                        raise ProtocolError(PROTO_TOO_BIG_MBULK)
                    self._left = 0
                    self._hold(buf, pos, line_end=b"\r", line_error=PROTO_TOO_BIG_MBULK)
                    return
                if nl + 1 >= end:
                    # The byte after \r has not arrived.
                    self._left = 0
                    self._hold(buf, pos, need=nl - pos + 2)
                    return
                count = self._mbulk_headers.get(buf[pos:nl])
                if count is None:
                    count = _string2ll(buf[pos + 1 : nl])
                    if count is None or count > self.max_multibulk_len:
                        raise ProtocolError(PROTO_INVALID_MULTIBULK)
                pos = nl + 2
                if count <= 0:
                    continue
                args = []
                left = count
            # Inside a multibulk command: read its bulk strings.
            while left:
                nl = find(b"\r", pos)
                if nl < 0 or nl - pos > INLINE_MAX_LEN or nl + 1 >= end:
                    self._args = args
                    self._left = left
                    if nl < 0 or nl - pos > INLINE_MAX_LEN:
                        if nl - pos > INLINE_MAX_LEN or end - pos > INLINE_MAX_LEN:
                            raise ProtocolError(PROTO_TOO_BIG_BULK)
                        self._hold(buf, pos, line_end=b"\r", line_error=PROTO_TOO_BIG_BULK)
                    else:
                        self._hold(buf, pos, need=nl - pos + 2)
                    return
                size = bulk_headers.get(buf[pos:nl])
                if size is None:
                    if buf[pos] != _DOLLAR:
                        raise ProtocolError(proto_expected_dollar(buf[pos : pos + 1]))
                    size = _string2ll(buf[pos + 1 : nl])
                    if size is None or size < 0 or size > self.max_bulk_len:
                        raise ProtocolError(PROTO_INVALID_BULK)
                pos = nl + 2
                stop = pos + size
                if stop + 2 > end:
                    self._args = args
                    self._left = left
                    self._hold(buf, pos, bulk=size)
                    return
                args.append(buf[pos:stop])
                pos = stop + 2
                left -= 1
            emit(args)

    def _fast(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        """Take the whole, canonical multibulk commands at ``pos`` with C-level
        operations; return the position of the first byte not taken.

        The bytes are split at every CRLF. A command is taken only if its
        ``*<n>`` part and every ``$<len>`` part are cached (so valid, with no
        CR inside) and every payload part is exactly ``len`` long: then the
        payload is followed by CRLF and contains none, which is precisely what
        the general loop would have read. Anything else (inline commands,
        payloads containing CRLF, uncached lengths, the incomplete last
        command) is left to the general loop, so this only affects speed.
        Works through ``_FAST_WINDOW`` bytes at a time so a large buffer is
        never split whole.
        """
        end = len(buf)
        mbulk_get = self._mbulk_headers.get
        bulk_get = self._bulk_headers.get
        emit = out.append
        while pos < end and buf[pos] == _STAR:
            if pos == 0 and end <= _FAST_WINDOW:
                window = buf
            else:
                window = buf[pos : pos + _FAST_WINDOW]
            parts = window.split(b"\r\n")
            last = len(parts) - 1  # parts[last] has no CRLF after it
            i = 0
            complete = True  # stopped only because a command crosses the window end
            while i < last:
                count = mbulk_get(parts[i])
                if count is None:
                    complete = False
                    break
                j = i + 1 + 2 * count
                if j > last:
                    break
                k = i + 1
                while k < j:
                    if bulk_get(parts[k]) != len(parts[k + 1]):
                        break
                    k += 2
                else:
                    emit(parts[i + 2 : j : 2])
                    i = j
                    continue
                complete = False
                break
            if not i:
                return pos
            if i == last:
                pos += len(window) - len(parts[last])
            else:
                pos += sum(map(len, parts[:i])) + 2 * i
            if not complete or len(window) < _FAST_WINDOW:
                return pos
        return pos

    def _inline(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        """Parse the inline command at ``pos``; return the position after it,
        or -1 when its line is incomplete (the tail is then held)."""
        nl = buf.find(b"\n", pos, pos + INLINE_MAX_LEN + 1)
        if nl < 0:
            if len(buf) - pos > INLINE_MAX_LEN:
                raise ProtocolError(PROTO_TOO_BIG_INLINE)
            self._hold(buf, pos, line_end=b"\n", line_error=PROTO_TOO_BIG_INLINE)
            return -1
        stop = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl  # drop one \r
        args = split_inline(buf[pos:stop])
        if args is None:
            raise ProtocolError(PROTO_UNBALANCED_QUOTES)
        if args:
            out.append(args)
        return nl + 1
