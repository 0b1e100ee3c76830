"""msgpack encoding on hot paths, with one reusable Packer per thread.

``msgpack.packb`` builds a Packer (and its buffer) per call, which costs
more than encoding a small record; a Packer kept per thread costs nothing
after the first call. A Packer is not shared between threads: the storage
writers encode too.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

_local = threading.local()


def pack(obj: Any) -> bytes:
    """``msgpack.packb(obj, use_bin_type=True)``, cheaper."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)
