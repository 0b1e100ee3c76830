"""Argument parsing and number formatting shared by the data-command modules.

Redis is strict about numbers and clients notice the difference, so each
parser here mirrors one function of Redis 7.0's src/util.c:

* ``parse_int``: ``string2ll`` (no spaces, no ``+``, no leading zeros but
  ``0``, fits a signed 64-bit integer);
* ``parse_long_double`` / ``format_long_double``: ``string2ld`` and
  ``ld2string(..., LD_STR_HUMAN)``. INCRBYFLOAT and HINCRBYFLOAT compute in C
  ``long double``, the x87 80-bit format (64-bit significand) on x86-64 Linux;
  a Python float would print ``0.1`` as ``0.10000000000000001``. Values are
  kept as exact ``Fraction`` objects and rounded to that format after every
  step, which reproduces Redis's text digit for digit;
* ``parse_cursor``: ``parseScanCursorOrReply`` (``strtoul`` semantics).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from makod.kv import errors
from makod.kv.errors import CommandError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
# HRANDFIELD, SRANDMEMBER and ZRANDMEMBER with a negative count pick |count|
# elements with repetition, whatever the collection's size. Redis builds any
# number; here one event loop also keeps the shard's leadership alive, and
# 10^8 picks held it for over a minute (the leader was deposed). 100,000
# picks take about 50 ms.
RANDOM_PICKS_MAX = 100_000


def check_random_picks(count: int) -> None:
    """A negative count past RANDOM_PICKS_MAX: the clear error, not a stall."""
    if count < -RANDOM_PICKS_MAX:
        raise CommandError(errors.RANDOM_PICKS_TOO_MANY.format(-count, RANDOM_PICKS_MAX))


# -- integers -------------------------------------------------------------------


def parse_int(s: bytes) -> int | None:
    """Redis's string2ll: the int64 that ``s`` spells exactly, or None."""
    n = len(s)
    # LONG_STR_SIZE is 21: longer strings are rejected before parsing.
    if n == 0 or n > 20:
        return None
    if s.isdigit():
        if s[0] == 48 and n > 1:  # leading zero
            return None
        v = int(s)
        return v if v <= INT64_MAX else None
    if s[0] == 45 and n > 1 and s[1] != 48:  # '-', and no "-0..."
        digits = s[1:]
        if digits.isdigit():
            v = -int(digits)
            return v if v >= INT64_MIN else None
    return None


def int_arg(s: bytes, error: str = errors.NOT_INTEGER) -> int:
    v = parse_int(s)
    if v is None:
        raise CommandError(error)
    return v


# -- long double (x87 extended precision) -----------------------------------------

# The x87 format: a 64-bit significand m (top bit set when normal) times 2**e.
LD_MANT_BITS = 64
LD_EXP_MIN = -16445  # smallest e (denormals): 2**-16382 is the smallest normal
LD_EXP_MAX = 16320  # largest e of a finite value: below 2**16384
# Redis's MAX_LONG_DOUBLE_CHARS: longer input is rejected, output always fits.
MAX_LONG_DOUBLE_CHARS = 5 * 1024

INF = float("inf")

_DEC_RE = re.compile(rb"([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX_RE = re.compile(
    rb"([+-]?)0[xX](?:([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?"
)
_INF_RE = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)

# Python refuses int<->str conversions of more than 4300 digits by default
# (sys.int_max_str_digits); long doubles reach 4933 digits, so convert in chunks.
_CHUNK_DIGITS = 4000
_CHUNK = 10**_CHUNK_DIGITS


def _digits_to_int(d: bytes) -> int:
    if len(d) <= _CHUNK_DIGITS:
        return int(d)
    v = 0
    for i in range(0, len(d), _CHUNK_DIGITS):
        part = d[i : i + _CHUNK_DIGITS]
        v = v * 10 ** len(part) + int(part)
    return v


def _int_to_digits(v: int) -> bytes:
    if v < _CHUNK:
        return b"%d" % v
    hi, lo = divmod(v, _CHUNK)
    return _int_to_digits(hi) + (b"%d" % lo).rjust(_CHUNK_DIGITS, b"0")


def ld_round(v: Fraction) -> Fraction | float:
    """Round an exact value to the nearest long double (ties to even); +-INF on overflow."""
    if v == 0:
        return Fraction(0)
    negative = v < 0
    p, q = (-v.numerator, v.denominator) if negative else (v.numerator, v.denominator)
    e = p.bit_length() - q.bit_length()
    if (p >= (q << e)) if e >= 0 else ((p << -e) >= q):
        pass
    else:
        e -= 1
    # Now 2**e <= |v| < 2**(e+1): keep 64 significant bits.
    shift = max(e - (LD_MANT_BITS - 1), LD_EXP_MIN)
    num, den = (p, q << shift) if shift >= 0 else (p << -shift, q)
    m, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and m & 1):
        m += 1
    if m == 1 << LD_MANT_BITS:
        m >>= 1
        shift += 1
    if shift > LD_EXP_MAX:
        return -INF if negative else INF
    if negative:
        m = -m
    return Fraction(m << shift) if shift >= 0 else Fraction(m, 1 << -shift)


def parse_long_double(s: bytes) -> Fraction | float | None:
    """Redis's string2ld: a finite Fraction, +-INF (for "inf"), or None if invalid.

    Like strtold, overflow and underflow to zero are errors; NaN is an error.
    """
    n = len(s)
    if n == 0 or n >= MAX_LONG_DOUBLE_CHARS:
        return None
    m = _DEC_RE.fullmatch(s)
    if m is not None:
        sign, int_part, frac_part, only_frac, exp = m.groups()
        digits = (int_part or b"") + (frac_part or only_frac or b"")
        scale = len(frac_part or only_frac or b"")
        digits = digits.lstrip(b"0")
        if not digits:
            return Fraction(0)
        if exp is not None and len(exp.lstrip(b"+-")) > 12:
            # Far beyond the long double range either way (1e4932 overflows,
            # 1e-4951 underflows): strtold reports ERANGE.
            return None
        exp10 = (int(exp) if exp is not None else 0) - scale
        magnitude = len(digits) - 1 + exp10  # floor(log10(|value|))
        if magnitude > 4933 or magnitude < -4952:
            return None
        mant = _digits_to_int(digits)
        value = Fraction(mant * 10**exp10) if exp10 >= 0 else Fraction(mant, 10**-exp10)
        if sign == b"-":
            value = -value
    else:
        m = _HEX_RE.fullmatch(s)
        if m is not None:
            sign, int_part, frac_part, only_frac, exp = m.groups()
            hexdigits = (int_part or b"") + (frac_part or only_frac or b"")
            scale = 4 * len(frac_part or only_frac or b"")
            mant = int(hexdigits, 16)
            if mant == 0:
                return Fraction(0)
            if exp is not None and len(exp.lstrip(b"+-")) > 12:
                return None
            exp2 = (int(exp) if exp is not None else 0) - scale
            magnitude = mant.bit_length() - 1 + exp2
            if magnitude > 16400 or magnitude < -16500:
                return None
            value = Fraction(mant << exp2) if exp2 >= 0 else Fraction(mant, 1 << -exp2)
            if sign == b"-":
                value = -value
        else:
            m = _INF_RE.fullmatch(s)
            if m is None:
                return None  # includes "nan": string2ld rejects it
            return -INF if m.group(1) == b"-" else INF
    rounded = ld_round(value)
    if isinstance(rounded, float) or rounded == 0:
        return None  # ERANGE: overflow to HUGE_VAL or underflow to zero
    return rounded


def ld_add(a: Fraction | float, b: Fraction | float) -> Fraction | float | None:
    """a + b in long double arithmetic; None for NaN, +-INF for infinities."""
    a_inf = isinstance(a, float)
    b_inf = isinstance(b, float)
    if a_inf and b_inf:
        return a if a == b else None  # inf + -inf is NaN
    if a_inf:
        return a
    if b_inf:
        return b
    return ld_round(a + b)


def is_finite(v: Fraction | float | None) -> bool:
    return isinstance(v, Fraction)


def format_long_double(v: Fraction) -> bytes:
    """ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and dot) removed."""
    negative = v < 0
    a = -v if negative else v
    # glibc printf rounds the exact binary value, ties to even.
    scaled = a * 10**17
    q, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and q & 1):
        q += 1
    digits = _int_to_digits(q).rjust(18, b"0")
    whole, frac = digits[:-17], digits[-17:].rstrip(b"0")
    text = whole + b"." + frac if frac else whole
    if negative:
        text = b"-" + text
    if text == b"-0":
        text = b"0"
    return text


# -- SCAN cursors ------------------------------------------------------------------

_SPACE = b" \t\n\v\f\r"


def parse_cursor(s: bytes) -> int:
    """parseScanCursorOrReply: strtoul(s, 10) with the whole string consumed.

    strtoul accepts a sign ("-1" wraps to 2**64-1) and leading zeros; an empty
    string is cursor 0. The C string ends at the first NUL byte.
    """
    nul = s.find(b"\0")
    if nul >= 0:
        s = s[:nul]
    if not s:
        return 0
    if s[0] in _SPACE:
        raise CommandError(errors.INVALID_CURSOR)
    negative = False
    body = s
    if body[:1] in (b"+", b"-"):
        negative = body[:1] == b"-"
        body = body[1:]
    if not body.isdigit():
        # No digits at all leaves strtoul's end pointer at the start: valid
        # only for the empty string, handled above.
        raise CommandError(errors.INVALID_CURSOR)
    v = int(body)
    if v > UINT64_MAX:
        raise CommandError(errors.INVALID_CURSOR)
    if negative:
        v = (-v) & UINT64_MAX
    return v


# -- options -------------------------------------------------------------------------


def is_opt(arg: bytes, upper: bytes) -> bool:
    """Case-insensitive option comparison (Redis's strcasecmp)."""
    return len(arg) == len(upper) and arg.upper() == upper


# -- blocking timeouts -----------------------------------------------------------------

def parse_timeout_ms(arg: bytes) -> int:
    """getTimeoutFromObjectOrReply(UNIT_SECONDS): a timeout in seconds (a float)
    as whole milliseconds, rounded up; 0 waits forever.

    Redis 7.0 converts to a C long long without a range check: anything past
    it (inf, 1e16 seconds) wraps negative, and says so."""
    value = parse_long_double(arg)
    if value is None:
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    if not is_finite(value):
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    ms = math.ceil(value * 1000)
    if ms < 0 or ms > INT64_MAX:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    return ms


# -- doubles (replies) ----------------------------------------------------------------

def format_double(value: float) -> bytes:
    """A double as Redis 7.2+ writes it (util.c d2string): ``-0`` for negative
    zero, plain digits for integral values within +-LLONG_MAX/2, otherwise the
    shortest round-trip digits laid out as fpconv_dtoa lays them out."""
    if math.isnan(value):
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -_HALF_LLONG_MAX <= value <= _HALF_LLONG_MAX and value == int(value):
        return b"%d" % int(value)
    return _dtoa_layout(value)


_HALF_LLONG_MAX = float((2**63 - 1) // 2)


def _dtoa_layout(value: float) -> bytes:
    """fpconv_dtoa's layout of the shortest digits: value = digits x 10**k."""
    sign, digit_tuple, k = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    ndigits = len(digits)
    exp = abs(k + ndigits - 1)
    prefix = "-" if sign else ""
    if k >= 0 and exp < ndigits + 7:
        return (prefix + digits + "0" * k).encode()
    if k < 0 and (k > -7 or exp < 4):
        offset = ndigits + k
        if offset <= 0:
            return (prefix + "0." + "0" * -offset + digits).encode()
        return (prefix + digits[:offset] + "." + digits[offset:]).encode()
    mantissa = digits[0] + ("." + digits[1:] if ndigits > 1 else "")
    return f"{prefix}{mantissa}e{'-' if k + ndigits - 1 < 0 else '+'}{exp}".encode()


def parse_intercard_limit(args: list[bytes], j: int) -> int:
    """SINTERCARD's and ZINTERCARD's ``[LIMIT limit]`` from ``args[j]`` on (0: no limit)."""
    limit = 0
    while j < len(args):
        if is_opt(args[j], b"LIMIT") and j + 1 < len(args):
            limit = parse_int(args[j + 1])
            if limit is None or limit < 0:
                raise CommandError(errors.LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return limit
