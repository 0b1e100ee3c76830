"""What a keyspace answers about its numbered databases (kv/dbs.py).

A mixin of ``Keyspace``: it reads ``data``, ``expires_count`` and the
keyspace's ``marked`` sets (the keys that begin with dbs.MARK, by database,
kept by ``Keyspace._replace``), so a numbered database's DBSIZE is O(1) and
its KEYS or FLUSHDB cost what it holds, not the whole keyspace.
"""

from __future__ import annotations

from makod.kv import dbs


class DatabasesMixin:
    data: dict
    marked: dict[int, set[bytes]]
    marked_count: int
    expires_count: int

    def db_size(self, db: int) -> int:
        own = len(self.marked.get(db, ()))
        return len(self.data) - self.marked_count + own if db == 0 else own

    def user_key_count(self) -> int:
        """Keys a client can reach: not the hidden ones (dbs.is_hidden)."""
        return len(self.data) - sum(len(keys) for db, keys in self.marked.items() if db >= dbs.FUNCTIONS_DB)

    def db_keys(self, db: int) -> list[bytes]:
        """Internal keys of database ``db``."""
        own = list(self.marked.get(db, ()))
        if db != 0:
            return own
        if not self.marked_count:
            return list(self.data)
        return [key for key in self.data if key[:1] != dbs.MARK] + own

    def only_db(self, db: int) -> bool:
        """Does database ``db`` hold every key here (so a FLUSH flushes just it)?"""
        return self.db_size(db) == len(self.data)

    def db_stats(self) -> dict[int, tuple[int, int]]:
        """Database -> (keys, keys with a TTL), for every database holding keys."""
        out: dict[int, tuple[int, int]] = {}
        data = self.data
        marked_expires = 0
        for db, keys in self.marked.items():
            if keys and db != 0 and db < dbs.FUNCTIONS_DB:
                expires = sum(1 for key in keys if data[key].expire_ms is not None)
                marked_expires += expires
                out[db] = (len(keys), expires)
        zero = self.db_size(0)
        if zero:
            out[0] = (zero, self.expires_count - marked_expires)
        return dict(sorted(out.items()))
