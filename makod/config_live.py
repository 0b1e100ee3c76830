"""CONFIG GET/SET of the settings that change a running node's client
handling and logging, in Redis's formats and with its error texts (the
rest of the table is in node_info.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from makod.server import Node

# Redis's log levels, and the Python level each maps to (verbose has no own level here).
LOG_LEVELS = {"debug": logging.DEBUG, "verbose": logging.DEBUG, "notice": logging.INFO, "warning": logging.WARNING}
BUFFER_CLASSES = {"normal": "normal", "pubsub": "pubsub", "slave": "replica", "replica": "replica"}


def parse_memory(value: str) -> int:
    text = value.strip().lower()
    units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "k": 1000, "m": 1000**2, "g": 1000**3, "b": 1}
    for suffix, mult in units.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * mult
    return int(text)


def live_params(node: "Node") -> dict[str, tuple[Callable[[], str], Callable[[str], None]]]:
    cfg = node.cfg

    def set_timeout(value: str) -> None:
        n = int(value)
        if not 0 <= n <= 2**31 - 1:
            raise ValueError("argument must be between 0 and 2147483647 inclusive")
        cfg.timeout = n

    def set_query_limit(value: str) -> None:
        n = parse_memory(value)
        if n < 1 << 20:
            raise ValueError("argument must be between 1048576 and 9223372036854775807 inclusive")
        cfg.client_query_buffer_limit = n

    def get_output_limits() -> str:
        limits = cfg.client_output_buffer_limit
        parts = []
        for shown, cls in (("normal", "normal"), ("slave", "replica"), ("pubsub", "pubsub")):
            hard, soft, secs = limits.get(cls, (0, 0, 0))
            parts.append(f"{shown} {hard} {soft} {secs}")
        return " ".join(parts)

    def set_output_limits(value: str) -> None:
        words = value.split()
        if len(words) % 4:
            raise ValueError("Wrong number of arguments in buffer limit configuration.")
        new = dict(cfg.client_output_buffer_limit)
        for i in range(0, len(words), 4):
            cls = BUFFER_CLASSES.get(words[i].lower())
            if cls is None:
                raise ValueError("Invalid client class specified in buffer limit configuration.")
            try:
                hard, soft, secs = parse_memory(words[i + 1]), parse_memory(words[i + 2]), int(words[i + 3])
            except ValueError:
                raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit configuration.") from None
            if min(hard, soft, secs) < 0:
                raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
            new[cls] = (hard, soft, secs)
        cfg.client_output_buffer_limit = new

    def get_loglevel() -> str:
        level = logging.getLogger().level
        return next((name for name, lv in LOG_LEVELS.items() if lv == level and name != "verbose"), "notice")

    def set_loglevel(value: str) -> None:
        level = LOG_LEVELS.get(value.lower())
        if level is None:
            raise ValueError("argument(s) must be one of the following: debug, verbose, notice, warning")
        logging.getLogger().setLevel(level)

    def set_tracking_max_keys(value: str) -> None:
        n = int(value)
        if not 0 <= n <= 2**63 - 1:
            raise ValueError("argument must be between 0 and 9223372036854775807 inclusive")
        node.tracking.max_keys = n

    return {
        "tracking-table-max-keys": (lambda: str(node.tracking.max_keys), set_tracking_max_keys),
        "timeout": (lambda: str(cfg.timeout), set_timeout),
        "client-query-buffer-limit": (lambda: str(cfg.client_query_buffer_limit), set_query_limit),
        "client-output-buffer-limit": (get_output_limits, set_output_limits),
        "loglevel": (get_loglevel, set_loglevel),
    }
