"""A node's log: rotation and JSON lines (makod/logs.py), and makoctl's tail
and follow across a rotation (makoctl/node_logs.py)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from makod import logs
from makoctl import node_logs


def _restore_root_logger():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def restore() -> None:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])

    return restore


def test_the_log_rotates_at_its_size_and_keeps_its_backups(tmp_path):
    restore = _restore_root_logger()
    path = tmp_path / "makod.log"
    try:
        logs.setup("s0r1", "info", "text", str(path), max_mb=1, backups=2)
        line = "x" * 1000
        for _ in range(4000):  # about 4 MB
            logging.getLogger("makod").info(line)
        logging.getLogger("makod").debug("below the level")
    finally:
        restore()
    assert path.exists() and (tmp_path / "makod.log.1").exists() and (tmp_path / "makod.log.2").exists()
    assert not (tmp_path / "makod.log.3").exists()
    assert all(os.path.getsize(p) <= (1 << 20) + 2000 for p in tmp_path.iterdir())
    text = path.read_text()
    assert " INFO s0r1 makod: " in text and "below the level" not in text


def test_json_lines_carry_the_node_and_the_event_kind(tmp_path):
    restore = _restore_root_logger()
    path = tmp_path / "makod.log"
    try:
        logs.setup("s1r0", "debug", "json", str(path), max_mb=1, backups=1)
        logging.getLogger("makod").info("role: %s", "leader", extra={"kind": "role"})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("makod.x").exception("failed")
    finally:
        restore()
    first, second = [json.loads(line) for line in path.read_text().splitlines()]
    assert first["node"] == "s1r0" and first["kind"] == "role" and first["msg"] == "role: leader"
    assert first["level"] == "info" and first["ts"].endswith("Z")
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]


def test_tail_reads_the_last_lines_only(tmp_path):
    path = tmp_path / "makod.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(100_000)))
    assert node_logs.tail_lines(str(path), 3) == b"line 99997\nline 99998\nline 99999\n"
    assert node_logs.tail_lines(str(path), 0) == b""
    short = tmp_path / "short.log"
    short.write_bytes(b"only\n")
    assert node_logs.tail_lines(str(short), 50) == b"only\n"


def test_follow_goes_on_across_a_rotation(tmp_path):
    path = tmp_path / "makod.log"
    path.write_bytes(b"old\n")
    got: list[bytes] = []
    done = threading.Event()
    t = threading.Thread(target=node_logs.follow, args=(str(path), got.append, 0.01, done.is_set))
    t.start()
    try:
        time.sleep(0.1)
        with open(path, "ab") as f:
            f.write(b"before rotation\n")
        time.sleep(0.1)
        os.rename(path, tmp_path / "makod.log.1")
        path.write_bytes(b"after rotation\n")
        deadline = time.monotonic() + 5
        while b"after rotation" not in b"".join(got) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        done.set()
        t.join(5)
    assert b"".join(got) == b"before rotation\nafter rotation\n"
