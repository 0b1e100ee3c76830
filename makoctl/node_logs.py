"""``makoctl cluster logs``: the tail of a node's log, and following it
across rotations (makod moves a full makod.log to makod.log.1)."""

from __future__ import annotations

import os
import sys
import time
from typing import BinaryIO, Callable

TAIL_CHUNK_BYTES = 64 * 1024


def tail_lines(path: str, lines: int) -> bytes:
    """The last ``lines`` lines of the file (reading from the end, not all of it)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(TAIL_CHUNK_BYTES, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    kept = data.splitlines(keepends=True)[-lines:] if lines else []
    return b"".join(kept)


def follow(path: str, write: Callable[[bytes], None], poll_s: float = 0.2,
           stop: Callable[[], bool] = lambda: False) -> None:
    """Write what is appended to ``path`` from now on, reopening it when it
    was rotated (a new inode) or truncated, until ``stop()`` or ^C."""
    f: BinaryIO = open(path, "rb")
    f.seek(0, os.SEEK_END)
    try:
        while not stop():
            chunk = f.read(TAIL_CHUNK_BYTES)
            if chunk:
                write(chunk)
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                time.sleep(poll_s)
                continue
            if st.st_ino != os.fstat(f.fileno()).st_ino or st.st_size < f.tell():
                f.close()
                f = open(path, "rb")  # rotated or truncated: the new file from its start
                continue
            time.sleep(poll_s)
    except KeyboardInterrupt:
        pass
    finally:
        f.close()


def stdout_write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
