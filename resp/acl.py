"""Redis 6+ ACL users, their rules and the permission check (no I/O here).

A user is built by applying ACL SETUSER rules in order, exactly as Redis
does (src/acl.c, ACLSetUser): ``on``/``off``, passwords (``>pw``, ``<pw``,
``#hash``, ``!hash``, ``nopass``, ``resetpass``), key patterns (``~p``,
``%R~p``, ``%W~p``, ``allkeys``, ``resetkeys``), channel patterns (``&p``,
``allchannels``, ``resetchannels``), commands (``+cmd``, ``-cmd``,
``+cmd|sub``, ``+@category``, ``-@category``, ``allcommands``,
``nocommands``) and ``reset``. Selectors (``(...)``) are not supported.

Command categories are Redis 7.0's own for every command Redis has (the ones
COMMAND INFO reports, generated from its command JSON), so ``+@read``, ``ACL
CAT read`` and COMMAND INFO agree with Redis and with each other; a command
Redis lacks (MAKO ...) is placed by its flags and group (``categories_of``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Callable, Iterable

from makod.kv.table import CommandSpec

CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
    "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
)
_GROUP_CATEGORY = {
    "generic": "keyspace", "string": "string", "hash": "hash", "list": "list", "set": "set",
    "sorted_set": "sortedset", "sorted-set": "sortedset", "connection": "connection", "transactions": "transaction", "pubsub": "pubsub",
    "scripting": "scripting", "stream": "stream", "bitmap": "bitmap", "hyperloglog": "hyperloglog", "geo": "geo",
}
# Commands @dangerous without the admin flag, for commands Redis 7.0 lacks:
# only "client" still matters here (SETINFO, NO-TOUCH, newer than 7.0); the
# others are Redis 7.0 commands, placed by its own data.
_DANGEROUS = {"keys", "flushall", "flushdb", "sort", "sort_ro", "migrate", "restore", "info", "role", "client"}

# The key rules of allkeys (~*): read and write every key.
ALL_KEYS = [("RW", b"*")]


class AclError(Exception):
    """A rule that cannot be applied; ``text`` is Redis's reason."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def categories_of(spec: CommandSpec) -> set[str]:
    # Imported here: resp.commands (which the data module is in) imports this module.
    from resp.commands.command_docs_data import INFO

    redis = INFO.get(spec.name)
    if redis is not None:
        return {cat[1:] for cat in redis[3]}
    flags = spec.flags
    cats = {"fast" if "fast" in flags else "slow"}
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags:
        cats.add("read")
    if "admin" in flags:
        cats |= {"admin", "dangerous"}
    if "pubsub" in flags:
        cats.add("pubsub")
    if "blocking" in flags:
        cats.add("blocking")
    group_cat = _GROUP_CATEGORY.get(spec.group)
    if group_cat:
        cats.add(group_cat)
    if spec.name.split("|")[0] in _DANGEROUS:
        cats.add("dangerous")
    return cats


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


@dataclass
class User:
    name: str
    enabled: bool = False
    nopass: bool = False
    passwords: list[str] = field(default_factory=list)  # SHA-256 hex, in the order added
    # Key patterns with what they allow: "RW", "R" or "W".
    key_patterns: list[tuple[str, bytes]] = field(default_factory=list)
    channel_patterns: list[bytes] = field(default_factory=list)
    # The command rules as given (after reset), replayed for ACL LIST/GETUSER
    # and to decide each command: later rules override earlier ones.
    command_rules: list[str] = field(default_factory=list)

    def check_password(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        if self.nopass:
            return True
        digest = hash_password(password)
        ok = False
        for stored in self.passwords:  # no early exit: same time for every stored hash
            ok |= hmac.compare_digest(stored, digest)
        return ok


class Acl:
    """Every user, and the permission check. ``spec_of(name)`` finds a command
    (or ``container|sub``) in the command table; ``matcher(pattern)`` compiles
    a Redis glob."""

    def __init__(self, all_specs: Callable[[], Iterable[CommandSpec]],
                 matcher: Callable[[bytes], Callable[[bytes], bool]]) -> None:
        self.all_specs = all_specs
        self.matcher = matcher
        self.users: dict[str, User] = {}
        self._allowed: dict[str, frozenset[str]] = {}  # user -> command names allowed (cache)
        self._matchers: dict[bytes, Callable[[bytes], bool]] = {}
        self.reset_default(None)

    # -- users ---------------------------------------------------------------------------
    def reset_default(self, requirepass: str | None) -> None:
        """Redis's default user: all commands, keys and channels; ``requirepass``
        is its password (none: nopass)."""
        rules = ["reset", "on", "~*", "&*", "+@all"]
        rules += [f">{requirepass}"] if requirepass else ["nopass"]
        self.users["default"] = self.build("default", rules, existing=None)
        self._allowed.pop("default", None)

    def set_requirepass(self, requirepass: str | None) -> None:
        user = self.users["default"]
        user.passwords = [hash_password(requirepass.encode())] if requirepass else []
        user.nopass = not requirepass

    def setuser(self, name: str, rules: list[str]) -> None:
        """ACL SETUSER: all rules apply or none (raises AclError)."""
        self.users[name] = self.build(name, rules, existing=self.users.get(name))
        self._allowed.pop(name, None)

    def deluser(self, name: str) -> bool:
        self._allowed.pop(name, None)
        return self.users.pop(name, None) is not None

    def build(self, name: str, rules: list[str], existing: User | None) -> User:
        if existing is None:
            user = User(name)
        else:
            user = User(name, existing.enabled, existing.nopass, list(existing.passwords),
                        list(existing.key_patterns), list(existing.channel_patterns), list(existing.command_rules))
        for rule in rules:
            self._apply(user, rule)
        return user

    def _apply(self, user: User, rule: str) -> None:
        low = rule.lower()
        if low == "on":
            user.enabled = True
        elif low == "off":
            user.enabled = False
        elif low == "nopass":
            user.nopass, user.passwords = True, []
        elif low == "resetpass":
            user.nopass, user.passwords = False, []
        elif rule.startswith(">"):
            digest = hash_password(rule[1:].encode("utf-8", "surrogateescape"))
            if digest not in user.passwords:
                user.passwords.append(digest)
            user.nopass = False
        elif rule.startswith("<"):
            digest = hash_password(rule[1:].encode("utf-8", "surrogateescape"))
            if digest not in user.passwords:
                raise AclError("no such password")
            user.passwords.remove(digest)
        elif rule.startswith("#") or rule.startswith("!"):
            digest = rule[1:].lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise AclError("The password hash must be exactly 64 characters and contain only lowercase "
                               "hexadecimal characters")
            if rule[0] == "#":
                if digest not in user.passwords:
                    user.passwords.append(digest)
                user.nopass = False
            elif digest in user.passwords:
                user.passwords.remove(digest)
            else:
                raise AclError("no such password")
        elif low in ("allkeys",) or rule == "~*":
            user.key_patterns = list(ALL_KEYS)
        elif low == "resetkeys":
            user.key_patterns = []
        elif rule.startswith("~") or rule.startswith("%"):
            self._key_rule(user, rule)
        elif low == "allchannels" or rule == "&*":
            user.channel_patterns = [b"*"]
        elif low == "resetchannels":
            user.channel_patterns = []
        elif rule.startswith("&"):
            if user.channel_patterns != [b"*"]:
                user.channel_patterns.append(rule[1:].encode("utf-8", "surrogateescape"))
        elif low in ("allcommands", "nocommands"):
            user.command_rules = ["+@all" if low == "allcommands" else "-@all"]
        elif rule[:1] in ("+", "-"):
            self._check_command_rule(rule)
            if low in ("+@all", "-@all"):
                user.command_rules = [low]
            else:
                user.command_rules.append(low)
        elif low == "reset":
            user.enabled, user.nopass, user.passwords = False, False, []
            user.key_patterns, user.channel_patterns, user.command_rules = [], [], ["-@all"]
        elif rule.startswith("("):
            raise AclError("Selectors are not supported by makodb")
        else:
            raise AclError("Syntax error")

    def _key_rule(self, user: User, rule: str) -> None:
        if rule.startswith("~"):
            perm, pattern = "RW", rule[1:]
        else:
            head, sep, pattern = rule[1:].partition("~")
            perm = "".join(sorted(set(head.upper()), reverse=True))
            if not sep or not head or set(head.upper()) - {"R", "W"}:
                raise AclError("Syntax error")
        if user.key_patterns == ALL_KEYS and perm == "RW":
            return
        user.key_patterns.append((perm, pattern.encode("utf-8", "surrogateescape")))

    def _check_command_rule(self, rule: str) -> None:
        body = rule[1:].lower()
        if body.startswith("@"):
            if body[1:] != "all" and body[1:] not in CATEGORIES:
                raise AclError("Unknown command or category name in ACL")
            return
        names = {spec.name for spec in self.all_specs()}
        if body not in names:
            raise AclError("Unknown command or category name in ACL")

    # -- decisions -------------------------------------------------------------------------
    def allowed_commands(self, user: User) -> frozenset[str]:
        cached = self._allowed.get(user.name)
        if cached is not None:
            return cached
        allowed: set[str] = set()
        specs = list(self.all_specs())
        for rule in user.command_rules:
            add = rule[0] == "+"
            body = rule[1:]
            if body.startswith("@"):
                cat = body[1:]
                hit = {s.name for s in specs if cat == "all" or cat in categories_of(s)}
            else:
                hit = {s.name for s in specs if s.name == body or s.name.startswith(body + "|")}
            allowed = allowed | hit if add else allowed - hit
        result = frozenset(allowed)
        self._allowed[user.name] = result
        return result

    def command_ok(self, user: User, spec: CommandSpec) -> bool:
        return spec.name in self.allowed_commands(user)

    def key_ok(self, user: User, key: bytes, write: bool, read: bool) -> bool:
        need = ("W" if write else "") + ("R" if read else "")
        for perm, pattern in user.key_patterns:
            if all(p in perm for p in need) and self._match(pattern, key):
                return True
        return False

    def channel_ok(self, user: User, channel: bytes) -> bool:
        return any(self._match(p, channel) for p in user.channel_patterns)

    def _match(self, pattern: bytes, value: bytes) -> bool:
        if pattern == b"*":  # allkeys / allchannels: Redis skips matching (the empty key too)
            return True
        m = self._matchers.get(pattern)
        if m is None:
            m = self._matchers[pattern] = self.matcher(pattern)
        return m(value)

    # -- descriptions ------------------------------------------------------------------------
    def describe(self, user: User) -> str:
        """The user as ACL LIST shows it (and as an ACL file line)."""
        parts = ["user", user.name, "on" if user.enabled else "off"]
        if user.nopass:
            parts.append("nopass")
        parts += [f"#{h}" for h in user.passwords]
        parts += [self._key_text(perm, p) for perm, p in user.key_patterns] or ["resetkeys"]
        parts += ["&" + p.decode("utf-8", "surrogateescape") for p in user.channel_patterns] or ["resetchannels"]
        parts.append(self.commands_text(user))
        return " ".join(parts)

    @staticmethod
    def _key_text(perm: str, pattern: bytes) -> str:
        text = pattern.decode("utf-8", "surrogateescape")
        return f"~{text}" if perm == "RW" else f"%{perm}~{text}"

    @staticmethod
    def commands_text(user: User) -> str:
        # Redis starts every user from -@all and shows it: "-@all +get".
        rules = user.command_rules
        if not rules or rules[0] not in ("+@all", "-@all"):
            rules = ["-@all", *rules]
        return " ".join(rules)

    def keys_text(self, user: User) -> str:
        return " ".join(self._key_text(perm, p) for perm, p in user.key_patterns)

    def channels_text(self, user: User) -> str:
        return " ".join("&" + p.decode("utf-8", "surrogateescape") for p in user.channel_patterns)

    # -- persistence (the same lines as ACL LIST) -----------------------------------------------
    def dump(self) -> list[str]:
        return [self.describe(self.users[name]) for name in sorted(self.users)]

    def load_lines(self, lines: Iterable[str]) -> None:
        """Replace every user by these ``user NAME rules...`` lines (all or nothing)."""
        fresh: dict[str, User] = {}
        for number, line in enumerate(lines, start=1):
            words = line.split()
            if not words:
                continue
            if words[0] != "user" or len(words) < 2:
                raise AclError(f"line {number}: should start with 'user NAME'")
            try:
                fresh[words[1]] = self.build(words[1], words[2:], fresh.get(words[1]))
            except AclError as exc:
                raise AclError(f"line {number}: {exc.text}") from None
        if "default" not in fresh:
            fresh["default"] = self.build("default", ["reset", "on", "nopass", "~*", "&*", "+@all"], None)
        self.users = fresh
        self._allowed.clear()


class AclLog:
    """ACL LOG: recent denials, newest first; alike ones within 60 s are counted
    in one entry (src/acl.c addACLLogEntry)."""

    MAX_ENTRIES = 128
    GROUP_MS = 60_000

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms
        self.entries: list[dict] = []
        self.next_id = 0

    def add(self, reason: str, context: str, obj: str, username: str, client_info: str) -> None:
        now = self.now_ms()
        for entry in self.entries:
            if (entry["reason"], entry["context"], entry["object"], entry["username"]) == (
                    reason, context, obj, username) and now - entry["timestamp-last-updated"] < self.GROUP_MS:
                entry["count"] += 1
                entry["timestamp-last-updated"] = now
                entry["client-info"] = client_info
                self.entries.remove(entry)
                self.entries.insert(0, entry)
                return
        self.entries.insert(0, {
            "count": 1, "reason": reason, "context": context, "object": obj, "username": username,
            "client-info": client_info, "entry-id": self.next_id, "timestamp-created": now,
            "timestamp-last-updated": now,
        })
        self.next_id += 1
        del self.entries[self.MAX_ENTRIES:]

    def reset(self) -> None:
        self.entries.clear()
