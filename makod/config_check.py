"""Reading a config file's values: the checker that names the file, the
field and what was expected (ConfigError), and the WAN links section.
(makod/config.py builds the cluster's config with them.)"""

from __future__ import annotations

from typing import Any

from makod.kv.hashslot import NUM_SLOTS
from makod.links import MAX_LINK_MS, Link, LinkModel, pair_key


class ConfigError(Exception):
    def __init__(self, file: str, path: str, expected: str, got: Any = None, has_got: bool = True) -> None:
        self.file, self.path, self.expected = file, path, expected
        detail = f"{file}: {path}: expected {expected}"
        if has_got:
            detail += f", got {got!r}"
        super().__init__(detail)


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def _path(self, where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def string(self, d: dict, key: str, where: str = "", default: Any = ...) -> str:
        if key not in d:
            if default is ...:
                raise ConfigError(self.source, self._path(where, key), "a string (required field)", None, False)
            return default
        value = d[key]
        if not isinstance(value, str) or not value:
            raise ConfigError(self.source, self._path(where, key), "a non-empty string", value)
        return value

    def integer(self, d: dict, key: str, where: str = "", lo: int = 0, hi: int = 1 << 62, default: Any = ...) -> int:
        if key not in d:
            if default is ...:
                raise ConfigError(self.source, self._path(where, key), f"an integer {lo}-{hi} (required field)", None, False)
            return default
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(self.source, self._path(where, key), f"an integer {lo}-{hi}", value)
        return value

    def number(self, d: dict, key: str, where: str = "", lo: float = 0, hi: float = 1e12, default: Any = ...) -> float:
        if key not in d:
            if default is ...:
                raise ConfigError(self.source, self._path(where, key), f"a number {lo}-{hi} (required field)", None,
                                  False)
            return default
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ConfigError(self.source, self._path(where, key), f"a number {lo}-{hi}", value)
        return float(value)

    def choice(self, d: dict, key: str, where: str, choices: tuple[str, ...], default: str) -> str:
        if key not in d:
            return default
        value = d[key]
        if value not in choices:
            raise ConfigError(self.source, self._path(where, key), "one of " + ", ".join(choices), value)
        return value

    def slot_ranges(self, raw: Any, where: str) -> list[tuple[int, int]]:
        expected = "slot ranges like \"0-8191\" or a list of them, within 0-16383"
        if raw is None:
            raise ConfigError(self.source, where, expected + " (required field)", None, False)
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for item in items:
            text = str(item).strip()
            try:
                if "-" in text:
                    lo_s, hi_s = text.split("-", 1)
                    lo, hi = int(lo_s), int(hi_s)
                else:
                    lo = hi = int(text)
            except ValueError:
                raise ConfigError(self.source, where, expected, raw) from None
            if not 0 <= lo <= hi < NUM_SLOTS:
                raise ConfigError(self.source, where, expected, raw)
            out.append((lo, hi))
        return out


def _parse_links(v: "_Validator", data: dict, dcs: set[str], election_timeout_ms: int,
                 inject_delay_ms: float) -> LinkModel:
    """The ``links:`` section (docs/OPERATIONS.md, "WAN links")::

        links:
          default: {delay_ms: 10, jitter_ms: 1}   # any two distinct datacenters not listed
          pairs:
            - {between: [dc0, dc1], delay_ms: 25, jitter_ms: 2}

    Without ``links.default``, ``inject_delay_ms`` is the default delay
    (configs written before links keep working); giving both is refused, as
    one would silently lose to the other.
    """
    source = v.source
    raw = data.get("links")
    default = Link(inject_delay_ms)
    if raw is None:
        _check_round_trip(source, "inject_delay_ms", default, election_timeout_ms)
        return LinkModel(default)
    if not isinstance(raw, dict):
        raise ConfigError(source, "links", "a mapping with default and/or pairs", raw)
    for key in raw:
        if key not in ("default", "pairs"):
            raise ConfigError(source, f"links.{key}", "default or pairs", key)
    if "default" in raw:
        if "inject_delay_ms" in data:
            raise ConfigError(source, "links.default", "absent when inject_delay_ms is given (both set the default "
                              "delay; keep links.default)", raw["default"])
        default = _parse_link(v, raw["default"], "links.default", ("delay_ms", "jitter_ms"))
    _check_round_trip(source, "links.default", default, election_timeout_ms)
    pairs_raw = raw.get("pairs", [])
    if not isinstance(pairs_raw, list):
        raise ConfigError(source, "links.pairs", "a list of {between: [dcA, dcB], delay_ms, jitter_ms}", pairs_raw)
    pairs: dict[tuple[str, str], Link] = {}
    for i, item in enumerate(pairs_raw):
        where = f"links.pairs[{i}]"
        link = _parse_link(v, item, where, ("between", "delay_ms", "jitter_ms"))
        between = item.get("between")
        if (not isinstance(between, list) or len(between) != 2
                or not all(isinstance(dc, str) for dc in between)):
            raise ConfigError(source, f"{where}.between", "two datacenter names, like [dc0, dc1]", between,
                              "between" in item)
        for dc in between:
            if dc not in dcs:
                raise ConfigError(source, f"{where}.between", f"datacenters of the replicas ({', '.join(sorted(dcs))})",
                                  dc)
        key = pair_key(*between)
        if key in pairs:
            raise ConfigError(source, f"{where}.between", "a pair no earlier entry gives (links are symmetric)", between)
        _check_round_trip(source, where, link, election_timeout_ms)
        pairs[key] = link
    return LinkModel(default, pairs)


def _parse_link(v: "_Validator", raw: Any, where: str, keys: tuple[str, ...]) -> Link:
    if not isinstance(raw, dict):
        raise ConfigError(v.source, where, "a mapping with " + ", ".join(keys), raw)
    for key in raw:
        if key not in keys:
            raise ConfigError(v.source, f"{where}.{key}", "one of " + ", ".join(keys), key)
    return Link(v.number(raw, "delay_ms", where, lo=0, hi=MAX_LINK_MS),
                v.number(raw, "jitter_ms", where, lo=0, hi=MAX_LINK_MS, default=0.0))


def _check_round_trip(source: str, where: str, link: Link, election_timeout_ms: int) -> None:
    # A leader's lease runs 0.9 election timeouts from the send time of what a
    # majority acknowledged (docs/ARCHITECTURE.md, "Clocks and leases"): a
    # slower round trip never yields a lease, and the shard never serves.
    worst_rtt_ms = 2 * (link.delay_ms + link.jitter_ms)
    if worst_rtt_ms >= 0.9 * election_timeout_ms:
        raise ConfigError(source, where, f"a round trip 2 x (delay_ms + jitter_ms) below 0.9 x election_timeout_ms "
                          f"({0.9 * election_timeout_ms:g} ms; raise election_timeout_ms for a slower WAN)",
                          f"{worst_rtt_ms:g} ms")
