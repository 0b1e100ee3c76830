"""A node's log: plain lines or JSON lines, to stderr or a rotated file.

Every line names the node, so lines of several nodes merged (a log
collector, ``grep`` over a data dir) still say whose they are.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time

TEXT_FORMAT = "%(asctime)s %(levelname)s %(node)s %(name)s: %(message)s"


class _NodeName(logging.Filter):
    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, node, logger,
    msg, and ``kind`` for makod's events (role changes and the like)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "node": getattr(record, "node", ""),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        kind = getattr(record, "kind", None)
        if kind is not None:
            out["kind"] = kind
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(node: str, level: str, fmt: str, path: str | None, max_mb: int, backups: int) -> None:
    """Configure the root logger for this process (replaces earlier handlers)."""
    if path is None:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_mb << 20, backupCount=backups,
                                                       encoding="utf-8")
    handler.addFilter(_NodeName(node))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
