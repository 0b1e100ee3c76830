"""A native Python client for stored procedures (what the TPC-C driver uses).

    from makod.client import MakoClient
    client = MakoClient(port=7379)
    client.call("bank.transfer", {"from": "alice", "to": "bob", "amount": 5})

Calls travel over the RESP port as ``MAKO CALL <name> <msgpack args>``, so
any node accepts them; the node runs the procedure as one transaction.
"""

from __future__ import annotations

from typing import Any

import msgpack
import redis


class ProcedureAborted(Exception):
    """The procedure called tx.abort(reason): nothing it wrote happened."""


class MakoClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 7379, password: str | None = None,
                 socket_timeout: float = 30.0) -> None:
        self.redis = redis.Redis(host=host, port=port, password=password, protocol=2,
                                 socket_timeout=socket_timeout)

    def call(self, name: str, args: Any = None) -> Any:
        packed = msgpack.packb(args, use_bin_type=True)
        try:
            raw = self.redis.execute_command("MAKO", "CALL", name, packed)
        except redis.ResponseError as exc:
            text = str(exc)
            if text.startswith("ABORT "):
                raise ProcedureAborted(text[len("ABORT "):]) from None
            raise
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> "MakoClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
