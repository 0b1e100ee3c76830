"""makod.kv.glob against a line-by-line port of Redis 7.0's stringmatchlen.

The port below is deliberately literal (recursive, byte by byte, signed
chars, reads past the end of the pattern see 0 as C sees the terminator) so
that it can serve as the reference for the compiled, regex-based matcher.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.kv.glob import compile_matcher, match


def _c_char(b: int) -> int:
    return b - 256 if b >= 128 else b


def _tolower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


def reference(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """src/util.c stringmatchlen_impl, skipLongerMatches included."""
    p = [_c_char(b) for b in pattern] + [0]
    s = [_c_char(b) for b in string] + [0]
    skip_longer = [False]

    def impl(pi: int, plen: int, si: int, slen: int) -> bool:
        while plen and slen:
            c = p[pi]
            if c == ord("*"):
                while plen and p[pi + 1] == ord("*"):
                    pi += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(pi + 1, plen - 1, si, slen):
                        return True
                    if skip_longer[0]:
                        return False
                    si += 1
                    slen -= 1
                skip_longer[0] = True
                return False
            elif c == ord("?"):
                si += 1
                slen -= 1
            elif c == ord("["):
                pi += 1
                plen -= 1
                negate = p[pi] == ord("^")
                if negate:
                    pi += 1
                    plen -= 1
                matched = False
                while True:
                    if p[pi] == ord("\\") and plen >= 2:
                        pi += 1
                        plen -= 1
                        if p[pi] == s[si]:
                            matched = True
                    elif p[pi] == ord("]"):
                        break
                    elif plen == 0:
                        pi -= 1
                        plen += 1
                        break
                    elif plen >= 3 and p[pi + 1] == ord("-"):
                        start, end, ch = p[pi], p[pi + 2], s[si]
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start, end, ch = _tolower(start), _tolower(end), _tolower(ch)
                        pi += 2
                        plen -= 2
                        if start <= ch <= end:
                            matched = True
                    else:
                        if nocase:
                            if _tolower(p[pi]) == _tolower(s[si]):
                                matched = True
                        elif p[pi] == s[si]:
                            matched = True
                    pi += 1
                    plen -= 1
                if negate:
                    matched = not matched
                if not matched:
                    return False
                si += 1
                slen -= 1
            else:
                if c == ord("\\") and plen >= 2:
                    pi += 1
                    plen -= 1
                if nocase:
                    if _tolower(p[pi]) != _tolower(s[si]):
                        return False
                elif p[pi] != s[si]:
                    return False
                si += 1
                slen -= 1
            pi += 1
            plen -= 1
            if slen == 0:
                while p[pi] == ord("*"):
                    pi += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    return impl(0, len(pattern), 0, len(string))


CASES = [
    # pattern, subject, expected
    (b"*", b"anything", True),
    (b"*", b"", False),  # the loop never runs: KEYS/SCAN special-case "*"
    (b"", b"", True),
    (b"", b"a", False),
    (b"a*", b"a", True),
    (b"a**", b"a", True),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),  # reversed ranges are swapped
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"\\", b"\\", True),  # a lone trailing backslash is literal
    (b"a\\", b"a\\", True),
    (b"[", b"[", False),  # unterminated empty class matches nothing
    (b"[^", b"x", True),  # ... negated, anything
    (b"[abc", b"c", True),  # an unterminated class ends at the end
    (b"[]", b"]", False),
    (b"[]]", b"]", False),  # empty class, then a literal "]"... which needs a second byte
    (b"[]]", b"]]", False),
    (b"[]a]", b"a]", False),
    (b"[^]", b"x", True),
    (b"[a-]", b"^", True),  # "a-]" is the range "]".."a"
    (b"[a-]", b"-", False),
    (b"[\\]]", b"]", True),
    (b"[a\\-c]", b"-", True),
    (b"[a\\-c]", b"b", False),
    (b"[a-\xff]", b"\xff", True),  # signed chars: -1..97
    (b"[a-\xff]", b"\x80", False),
    (b"[a-\xff]", b"\x00", True),
    (b"[\x80-\xff]", b"\x90", True),
    (b"a\x00*", b"a\x00bc", True),
    (b"*a*a*a*a*b", b"a" * 200, False),
]


@pytest.mark.parametrize("pattern,subject,expected", CASES)
def test_known_cases(pattern: bytes, subject: bytes, expected: bool) -> None:
    assert match(pattern, subject) is expected
    assert reference(pattern, subject) is expected


def test_nocase() -> None:
    assert match(b"HELLO", b"hello", nocase=True)
    assert not match(b"HELLO", b"hello")
    assert match(b"h[A-Z]llo", b"hEllo")
    assert match(b"h[A-Z]llo", b"hello", nocase=True)
    assert match(b"h[E]llo", b"hello", nocase=True)
    assert match(b"\\H", b"h", nocase=True)
    # The escaped byte inside a class is compared exactly, even with nocase.
    assert not match(b"[\\E]", b"e", nocase=True)
    # Range ends are lowered after swapping: "[Z-a]" becomes z..a, empty.
    assert match(b"[Z-a]", b"_")
    assert not match(b"[Z-a]", b"_", nocase=True)
    assert not match(b"[Z-a]", b"z", nocase=True)


def test_compile_matcher_is_cached_and_callable() -> None:
    m1 = compile_matcher(b"user:*")
    m2 = compile_matcher(b"user:*")
    assert m1 is m2
    assert m1(b"user:1") and not m1(b"usr:1") and not m1(b"")


def test_regex_special_bytes_are_literal() -> None:
    for special in b".^$+(){}|":
        pat = bytes([special])
        assert match(pat, pat)
        assert not match(pat, b"x")
    assert match(b"a.b", b"a.b") and not match(b"a.b", b"axb")
    assert match(b"[.]", b".") and not match(b"[.]", b"x")
    assert match(b"[\\\\]", b"\\")


def test_no_exponential_backtracking() -> None:
    pattern = b"*a" * 20 + b"*b"
    subject = b"a" * 5000
    started = time.perf_counter()
    assert not match(pattern, subject)
    assert match(pattern, subject + b"b")
    assert time.perf_counter() - started < 1.0


ALPHABET = [b"a", b"b", b"A", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"\x00", b"\xff", b"\x80", b"z", b"Z"]
patterns = st.lists(st.sampled_from(ALPHABET), max_size=8).map(b"".join)
subjects = st.lists(st.sampled_from(ALPHABET), max_size=8).map(b"".join)


@settings(max_examples=3000, deadline=None)
@given(pattern=patterns, subject=subjects, nocase=st.booleans())
def test_matches_reference(pattern: bytes, subject: bytes, nocase: bool) -> None:
    assert match(pattern, subject, nocase) == reference(pattern, subject, nocase)


@settings(max_examples=500, deadline=None)
@given(pattern=st.binary(max_size=10), subject=st.binary(max_size=10), nocase=st.booleans())
def test_matches_reference_any_bytes(pattern: bytes, subject: bytes, nocase: bool) -> None:
    assert match(pattern, subject, nocase) == reference(pattern, subject, nocase)
