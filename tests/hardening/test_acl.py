"""ACL users and permissions on a real 2x3 cluster: a user made on one node is
enforced on every node (followers of the other shard included), survives
restarts, and is denied with Redis's exact NOPERM texts."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests.integration.cluster_util import Cluster

    c = Cluster(tmp_path_factory.mktemp("acl") / "data", shards=2, replicas=3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _client(cluster, name, **kw) -> redis.Redis:
    return cluster.client(name, retry=Retry(NoBackoff(), 0), **kw)


def _everywhere(cluster, predicate, what: str) -> None:
    for name in cluster.names:
        wait_for(lambda: predicate(_client(cluster, name)), timeout=15, what=f"{what} on {name}")


def test_a_user_made_on_one_node_is_enforced_on_every_node(cluster):
    admin = _client(cluster, cluster.names[0])
    assert admin.execute_command("ACL", "SETUSER", "alice", "on", ">s3cret", "~app:*", "+@read", "+@string",
                                 "+@connection", "-@dangerous", "+@transaction", "+acl|whoami") == b"OK"
    _everywhere(cluster, lambda c: b"alice" in c.execute_command("ACL", "USERS"), "alice known")
    far = cluster.names[-1]  # a replica of the other shard
    alice = _client(cluster, far, username="alice", password="s3cret")
    assert alice.execute_command("ACL", "WHOAMI") == b"alice"
    assert alice.set("app:1", "v") is True
    assert alice.get("app:1") == b"v"
    with pytest.raises(redis.exceptions.NoPermissionError, match=r"^No permissions to access a key$"):
        alice.set("other:1", "v")
    # Keys after a count (no fixed first key) are checked as well.
    for argv in (("ZUNION", "1", "other:z"), ("SINTERCARD", "2", "app:s", "other:s"), ("ZUNION", "1", "app:z")):
        if argv[-1].startswith("other"):
            with pytest.raises(redis.exceptions.NoPermissionError, match=r"^No permissions to access a key$"):
                alice.execute_command(*argv)
        else:
            assert alice.execute_command(*argv) == []
    with pytest.raises(redis.exceptions.NoPermissionError,
                       match=r"^User alice has no permissions to run the 'hset' command$"):
        alice.hset("app:h", "f", "v")
    with pytest.raises(redis.exceptions.NoPermissionError, match="'flushall' command"):
        alice.flushall()
    # Denied while queueing in MULTI: the transaction is discarded.
    assert alice.execute_command("MULTI") == b"OK"
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.execute_command("SET", "other:2", "x")
    with pytest.raises(redis.exceptions.ExecAbortError):
        alice.execute_command("EXEC")
    assert admin.exists("other:2") == 0
    log = _client(cluster, far).execute_command("ACL", "LOG")
    reasons = {entry[b"reason"] if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))[b"reason"]
               for entry in log}
    assert {b"key", b"command"} <= reasons


def test_wrong_passwords_hello_auth_and_dryrun(cluster):
    node = cluster.names[1]
    c = _client(cluster, node)
    with pytest.raises(redis.AuthenticationError):
        _client(cluster, node, username="alice", password="nope").ping()
    hello = c.execute_command("HELLO", "3", "AUTH", "alice", "s3cret")
    assert hello[b"proto"] == 3 if isinstance(hello, dict) else True
    admin = _client(cluster, cluster.names[2])
    assert admin.execute_command("ACL", "DRYRUN", "alice", "get", "app:1") == b"OK"
    assert admin.execute_command("ACL", "DRYRUN", "alice", "hset", "app:h", "f", "v") == \
        b"User alice has no permissions to run the 'hset' command"
    with pytest.raises(redis.ResponseError, match=r"^User 'nobody' not found$"):
        admin.execute_command("ACL", "DRYRUN", "nobody", "get", "x")


def test_getuser_list_and_errors(cluster):
    c = _client(cluster, cluster.names[0])
    user = c.execute_command("ACL", "GETUSER", "alice")
    fields = user if isinstance(user, dict) else dict(zip(user[::2], user[1::2]))
    assert b"on" in fields[b"flags"]
    assert len(fields[b"passwords"]) == 1 and len(fields[b"passwords"][0]) == 64
    assert fields[b"keys"] == b"~app:*"
    assert c.execute_command("ACL", "GETUSER", "nobody") is None
    assert any(line.startswith(b"user alice on #") for line in c.execute_command("ACL", "LIST"))
    with pytest.raises(redis.ResponseError, match=r"^Error in ACL SETUSER modifier 'bogus': Syntax error$"):
        c.execute_command("ACL", "SETUSER", "bob", "on", "bogus")
    with pytest.raises(redis.ResponseError, match="Unknown command or category name in ACL"):
        c.execute_command("ACL", "SETUSER", "bob", "+nosuchcommand")
    assert b"bob" not in c.execute_command("ACL", "USERS")  # all or nothing
    with pytest.raises(redis.ResponseError, match=r"^The 'default' user cannot be removed$"):
        c.execute_command("ACL", "DELUSER", "default")
    assert len(c.execute_command("ACL", "GENPASS")) == 64
    assert len(c.execute_command("ACL", "GENPASS", "10")) == 3
    assert b"read" in c.execute_command("ACL", "CAT")
    assert b"get" in c.execute_command("ACL", "CAT", "read")


def test_disabling_a_user_cuts_its_sessions_everywhere_and_survives_restarts(cluster):
    far = cluster.names[-1]
    alice = _client(cluster, far, username="alice", password="s3cret")
    assert alice.get("app:1") == b"v"
    _client(cluster, cluster.names[0]).execute_command("ACL", "SETUSER", "alice", "off")
    _everywhere(cluster, lambda c: b"off" in (lambda u: u if isinstance(u, dict) else dict(zip(u[::2], u[1::2])))(
        c.execute_command("ACL", "GETUSER", "alice"))[b"flags"], "alice off")
    with pytest.raises((redis.exceptions.NoPermissionError, redis.ConnectionError)):
        alice.get("app:1")
    with pytest.raises(redis.AuthenticationError):
        _client(cluster, far, username="alice", password="s3cret").ping()
    # A node that restarts keeps the users (its own copy on disk).
    cluster.kill(far)
    _client(cluster, cluster.names[0]).execute_command("ACL", "SETUSER", "carol", "on", ">pw", "~*", "+@all")
    cluster.restart(far)
    _everywhere(cluster, lambda c: b"carol" in c.execute_command("ACL", "USERS"), "carol known after restart")
    assert _client(cluster, far, username="carol", password="pw").set("k", "v") is True


def test_requirepass_is_the_default_users_password_on_every_node(cluster):
    c = _client(cluster, cluster.names[0])
    c.config_set("requirepass", "hunter2-long-password")
    try:
        for name in cluster.names:
            wait_for(lambda: _needs_auth(cluster, name), timeout=15, what=f"requirepass on {name}")
            assert _client(cluster, name, password="hunter2-long-password").ping() is True
    finally:
        _client(cluster, cluster.names[0], password="hunter2-long-password").config_set("requirepass", "")
        for name in cluster.names:
            wait_for(lambda: _client(cluster, name).ping(), timeout=15, what=f"no password on {name}")


def _needs_auth(cluster, name) -> bool:
    try:
        _client(cluster, name).get("x")
    except redis.AuthenticationError:
        return True
    except redis.ResponseError as exc:
        return "NOAUTH" in str(exc)
    return False


def test_acl_save_and_load_with_an_aclfile(make_cluster, cluster):
    with pytest.raises(redis.ResponseError, match="not configured to use an ACL file"):
        _client(cluster, cluster.names[0]).execute_command("ACL", "SAVE")
    single = make_cluster(config={"aclfile": "users.acl"})
    c = single.client()
    c.execute_command("ACL", "SETUSER", "dave", "on", ">pw", "~d:*", "+get")
    assert c.execute_command("ACL", "SAVE") == b"OK"
    import os

    text = open(os.path.join(single.data_dir, "users.acl")).read()
    assert "user dave on #" in text and "~d:* resetchannels -@all +get" in text
    c.execute_command("ACL", "DELUSER", "dave")
    assert b"dave" not in c.execute_command("ACL", "USERS")
    assert c.execute_command("ACL", "LOAD") == b"OK"
    assert single.client(username="dave", password="pw").get("d:1") is None
