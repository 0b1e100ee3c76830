"""Redis glob-style pattern matching (KEYS, SCAN MATCH, HSCAN MATCH, CONFIG GET).

Exactly the semantics of Redis 7.0's ``stringmatchlen`` (src/util.c), edge
cases included:

* ``*`` any run of bytes, ``?`` one byte, ``\\x`` the byte ``x`` (a lone
  trailing backslash is a literal backslash);
* ``[abc]``, ``[^abc]``, ``[a-z]`` (a reversed range ``[z-a]`` is swapped),
  ``\\`` escapes inside a class; ``[]`` is an empty class (matches nothing)
  and ``[^]`` matches any byte;
* an unterminated class (``[abc``) ends at the end of the pattern, so it is
  ``[abc]``; ``[`` alone matches nothing, ``[^`` any one byte;
* ``-`` right before the closing bracket still forms a range with ``]``
  (``[a-]`` is the range ``]``..``a``): Redis looks at the next byte only;
* bytes are compared as C ``char``, which is signed on the platforms Redis
  runs on, so a range with a byte >= 0x80 as an end compares negative values
  (``[a-\\xff]`` is -1..97: bytes 0x00-0x61 and 0xff);
* ``nocase`` lower-cases ASCII letters only (the C locale), and in a range
  lower-cases the ends after swapping them;
* an empty subject is matched only by an empty pattern: Redis's loop never
  runs, so ``*`` does not match ``""``. (KEYS and SCAN special-case the
  pattern ``*`` before matching, so ``KEYS *`` still lists the empty key.)

A pattern is compiled once (LRU-cached) into a Python regex: the pattern is
tokenised the way the C loop walks it (the walk does not depend on the
subject), each class becomes the exact set of bytes it accepts, and runs of
``*`` become atomic lazy groups so that patterns such as ``*a*a*a*b`` cannot
backtrack exponentially: the segments between stars have a fixed length, so
placing each at its leftmost occurrence is always right (the same reasoning
as Redis's ``skipLongerMatches``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

__all__ = ["match", "compile_matcher"]

# Compiled patterns kept; KEYS/SCAN callers repeat a handful of patterns.
MATCHER_CACHE_SIZE = 1024

# Token kinds.
_STAR = 0
_ANY = 1
_SET = 2  # a frozenset of accepted byte values (a literal is a one- or two-byte set)


def _signed(byte: int) -> int:
    """The value of a C ``char`` holding ``byte`` (signed on x86 and ARM Linux builds)."""
    return byte - 256 if byte >= 128 else byte


def _lower(c: int) -> int:
    """C-locale ``tolower`` on a (possibly negative) char value."""
    return c + 32 if 65 <= c <= 90 else c


def _literal(byte: int, nocase: bool) -> frozenset[int]:
    if nocase and (65 <= byte <= 90 or 97 <= byte <= 122):
        return frozenset((byte | 0x20, byte & ~0x20))
    return frozenset((byte,))


def _tokenize(pattern: bytes, nocase: bool) -> list[tuple[int, frozenset[int] | None]]:
    """Walk ``pattern`` exactly as stringmatchlen does; return its tokens.

    Reads past the end see 0, as the C code sees the sds terminator.
    """
    n = len(pattern)

    def at(i: int) -> int:
        return pattern[i] if i < n else 0

    tokens: list[tuple[int, frozenset[int] | None]] = []
    i = 0
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            while i + 1 < n and pattern[i + 1] == 0x2A:
                i += 1
            tokens.append((_STAR, None))
        elif c == 0x3F:  # '?'
            tokens.append((_ANY, None))
        elif c == 0x5B:  # '['
            i += 1
            negate = at(i) == 0x5E  # '^'
            if negate:
                i += 1
            escaped: list[int] = []
            ranges: list[tuple[int, int]] = []
            plain: list[int] = []
            while True:
                left = n - i
                if at(i) == 0x5C and left >= 2:  # '\\' escapes the next byte
                    i += 1
                    escaped.append(pattern[i])
                elif at(i) == 0x5D:  # ']'
                    break
                elif left == 0:
                    # Unterminated: the C code steps back so that the common
                    # "advance one" below lands exactly on the end.
                    i -= 1
                    break
                elif left >= 3 and pattern[i + 1] == 0x2D:  # 'x-y'
                    start, end = _signed(pattern[i]), _signed(pattern[i + 2])
                    if start > end:
                        start, end = end, start
                    if nocase:
                        start, end = _lower(start), _lower(end)
                    ranges.append((start, end))
                    i += 2
                else:
                    plain.append(pattern[i])
                i += 1
            accepted = set()
            for b in range(256):
                sc = _signed(b)
                ok = b in escaped
                if not ok:
                    lc = _lower(sc) if nocase else sc
                    ok = any(lo <= lc <= hi for lo, hi in ranges)
                if not ok:
                    if nocase:
                        ok = any(_lower(_signed(p)) == _lower(sc) for p in plain)
                    else:
                        ok = b in plain
                if ok != negate:
                    accepted.add(b)
            tokens.append((_SET, frozenset(accepted)))
        elif c == 0x5C and n - i >= 2:  # '\\x'
            i += 1
            tokens.append((_SET, _literal(pattern[i], nocase)))
        else:
            tokens.append((_SET, _literal(c, nocase)))
        i += 1
    return tokens


def _byte_class(accepted: frozenset[int]) -> bytes:
    if not accepted:
        return b"(?!)"
    if len(accepted) == 1:
        return re.escape(bytes(accepted))
    if len(accepted) == 256:
        return b"."
    parts = []
    run_start = prev = None
    for b in sorted(accepted):
        if prev is not None and b == prev + 1:
            prev = b
            continue
        if run_start is not None:
            parts.append((run_start, prev))
        run_start = prev = b
    parts.append((run_start, prev))
    body = b"".join(
        b"\\x%02x" % lo if lo == hi else b"\\x%02x-\\x%02x" % (lo, hi) for lo, hi in parts
    )
    return b"[" + body + b"]"


def _regex(tokens: list[tuple[int, frozenset[int] | None]]) -> bytes:
    segments: list[list[bytes]] = [[]]
    for kind, accepted in tokens:
        if kind == _STAR:
            segments.append([])
        elif kind == _ANY:
            segments[-1].append(b".")
        else:
            assert accepted is not None
            segments[-1].append(_byte_class(accepted))
    if len(segments) == 1:
        return b"".join(segments[0])
    out = [b"".join(segments[0])]
    for middle in segments[1:-1]:
        out.append(b"(?>.*?" + b"".join(middle) + b")")
    out.append(b".*" + b"".join(segments[-1]))
    return b"".join(out)


@lru_cache(maxsize=MATCHER_CACHE_SIZE)
def _compiled(pattern: bytes, nocase: bool) -> Callable[[bytes], bool]:
    if not pattern:
        return lambda subject: not subject
    tokens = _tokenize(pattern, nocase)
    if len(tokens) == 1 and tokens[0][0] == _STAR:
        return lambda subject: len(subject) > 0
    fullmatch = re.compile(_regex(tokens), re.DOTALL).fullmatch
    return lambda subject: len(subject) > 0 and fullmatch(subject) is not None


def compile_matcher(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate ``subject -> bool`` for ``pattern`` (cached)."""
    return _compiled(bytes(pattern), bool(nocase))


def match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """Does ``subject`` match the Redis glob ``pattern``?"""
    return _compiled(bytes(pattern), bool(nocase))(subject)
