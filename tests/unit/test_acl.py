"""ACL rules applied as Redis applies them (resp/acl.py), without a server."""

from __future__ import annotations

import pytest

import makod.commands  # noqa: F401  (fills the command table)
from makod.kv import glob
from resp.acl import Acl, AclError, hash_password
from makod.kv.table import TABLE


def _acl() -> Acl:
    return Acl(lambda: [s for spec in TABLE for s in (spec, *spec.subcommands.values())], glob.compile_matcher)


def _spec(name: str):
    head, _, sub = name.partition("|")
    spec = TABLE.lookup(head.encode())
    return spec.subcommands[sub] if sub else spec


def test_default_user_can_do_everything_even_the_empty_key():
    acl = _acl()
    user = acl.users["default"]
    assert user.enabled and user.nopass
    assert acl.command_ok(user, _spec("flushall")) and acl.command_ok(user, _spec("config|set"))
    assert acl.key_ok(user, b"", write=True, read=True)


def test_rules_apply_in_order_and_later_ones_win():
    acl = _acl()
    acl.setuser("u", ["on", ">a", ">b", "<a", "~app:*", "%R~ro:*", "+@all", "-@dangerous", "+keys", "+config", "-config|set"])
    user = acl.users["u"]
    assert user.passwords == [hash_password(b"b")]
    assert user.check_password(b"b") and not user.check_password(b"a")
    assert acl.command_ok(user, _spec("keys")) and not acl.command_ok(user, _spec("flushall"))
    assert acl.command_ok(user, _spec("config|get")) and not acl.command_ok(user, _spec("config|set"))
    assert acl.key_ok(user, b"app:1", write=True, read=False)
    assert acl.key_ok(user, b"ro:1", write=False, read=True)
    assert not acl.key_ok(user, b"ro:1", write=True, read=False)
    assert not acl.key_ok(user, b"", write=False, read=True)  # ~app:* does not match the empty key
    acl.setuser("u", ["reset"])
    user = acl.users["u"]
    assert not user.enabled and not user.passwords and not user.key_patterns
    assert not acl.command_ok(user, _spec("get"))


@pytest.mark.parametrize("rule,reason", [
    ("bogus", "Syntax error"), ("+nosuch", "Unknown command or category name in ACL"),
    ("+@nosuch", "Unknown command or category name in ACL"), ("<never-set", "no such password"),
    ("#abc", "The password hash must be exactly 64 characters"), ("%X~k", "Syntax error"),
])
def test_bad_rules_change_nothing(rule, reason):
    acl = _acl()
    acl.setuser("u", ["on", "nopass"])
    with pytest.raises(AclError, match=reason):
        acl.setuser("u", ["off", rule])
    assert acl.users["u"].enabled  # all or nothing


def test_dump_and_load_round_trip():
    acl = _acl()
    acl.setuser("alice", ["on", ">pw", "~app:*", "%W~w:*", "&chan:*", "+@read", "-get"])
    lines = acl.dump()
    other = _acl()
    other.load_lines(lines)
    assert other.dump() == lines
    assert other.users["alice"].check_password(b"pw")
