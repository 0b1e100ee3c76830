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

import os
from typing import Any

from makod.core.messages import Message, message


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
