"""Every node holds the same ACL users: a change on any node reaches all of them.

The table is small and changes rarely, so each change replaces the whole
table, ordered by a version ``(counter, node id)``: a node adopts a table
with a higher version than its own (last writer wins; ties cannot happen,
node ids differ). A node also resends its table to every peer every few
seconds, so one that was down or cut off converges when it is back. Each
node keeps its table in ``DATA_DIR/NODE/acl.users`` (0600): the first line
is the version, then one ``user ...`` line per user (ACL LIST's format).
Links are authenticated (peer_auth.py): only members can send a table.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

from makod.core.messages import Message, message
from makod.kv import glob
from resp.acl import Acl, AclError, AclLog
from makod.kv.table import TABLE

log = logging.getLogger("makod.acl")

# How often a node resends its table to every peer (a peer that missed a
# change, was down or cut off, converges within this).
GOSSIP_S = 2.0


@message
class AclTable(Message):
    __slots__ = ("src", "counter", "origin", "lines")
    TYPE = 60

    def __init__(self, src: int, counter: int, origin: int, lines: list) -> None:
        self.src, self.counter, self.origin, self.lines = src, counter, origin, list(lines)


def read_table_file(path: str) -> tuple[tuple[int, int], list[str]] | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    if not lines:
        return None
    counter, origin = (int(x) for x in lines[0].split())
    return (counter, origin), lines[1:]


def write_table_file(path: str, version: tuple[int, int], lines: list[str]) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(f"{version[0]} {version[1]}\n")
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def table_message(node_id: int, version: tuple[int, int], lines: list[str]) -> Any:
    return AclTable(node_id, version[0], version[1], lines)


class AclKeeper:
    """One node's users: loaded from its own copy, else from the config (``users:``,
    ``aclfile:``, ``requirepass``); changed locally or by a newer table from a peer."""

    def __init__(self, cfg: Any, node_id: int, path: str, now_ms: Callable[[], int],
                 broadcast: Callable[[Message], None]) -> None:
        self.node_id = node_id
        self.path = path
        self.aclfile = cfg.aclfile
        self.broadcast = broadcast
        self.acl = Acl(lambda: [s for spec in TABLE for s in (spec, *spec.subcommands.values())],
                       glob.compile_matcher)
        self.log = AclLog(now_ms)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            saved = read_table_file(path)
            if saved is not None:
                self.version, lines = saved
            else:
                self.version = (0, 0)
                lines = list(cfg.users)
                if cfg.aclfile and os.path.exists(cfg.aclfile):
                    with open(cfg.aclfile, encoding="utf-8") as f:
                        lines += f.read().splitlines()
            self.acl.load_lines(lines)
        except (AclError, ValueError, OSError) as exc:
            from makod.storage.lmdb_store import StoreError

            raise StoreError(f"{path}: cannot load the ACL users: {getattr(exc, 'text', exc)}") from None
        if not any(line.split()[1:2] == ["default"] for line in lines):
            self.acl.set_requirepass(cfg.requirepass)
        self.last_gossip_s = 0.0

    def changed(self) -> None:
        """A local change: a new version, on disk, then to every node."""
        self.version = (self.version[0] + 1, self.node_id)
        write_table_file(self.path, self.version, self.acl.dump())
        self._send()

    def _send(self) -> None:
        self.broadcast(table_message(self.node_id, self.version, self.acl.dump()))

    def tick(self, now_s: float) -> None:
        if self.version != (0, 0) and now_s - self.last_gossip_s >= GOSSIP_S:
            self.last_gossip_s = now_s
            self._send()

    def on_table(self, msg: AclTable) -> None:
        version = (msg.counter, msg.origin)
        if version <= self.version:
            return
        try:
            self.acl.load_lines(msg.lines)
        except AclError as exc:
            log.error("ignoring the ACL table %s from node %d: %s", version, msg.src, exc.text)
            return
        self.version = version
        write_table_file(self.path, version, self.acl.dump())
        log.info("ACL users updated to version %s (from node %d)", version, msg.src)

    def save(self) -> None:
        """ACL SAVE: the users in ACL file format."""
        tmp = self.aclfile + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in self.acl.dump()))
        os.replace(tmp, self.aclfile)

    def load(self) -> None:
        """ACL LOAD: the file's users replace the table, on every node."""
        with open(self.aclfile, encoding="utf-8") as f:
            self.acl.load_lines(f.read().splitlines())
        self.changed()
