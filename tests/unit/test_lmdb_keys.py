"""Every key Redis accepts can be stored: empty, LMDB-sized and far past LMDB's 511-byte limit."""

from __future__ import annotations

import lmdb
import pytest

from makod.core.durability import Checkpoint
from makod.kv.records import Record
from makod.storage.base import encode_record
from makod.storage.lmdb_store import LmdbStore, MAX_INLINE_KEY_BYTES

KEYS = [b"", b"a", b"x" * MAX_INLINE_KEY_BYTES, b"y" * (MAX_INLINE_KEY_BYTES + 1), b"z" * 511, b"w" * 512,
        b"\x00" * 600, b"v" * 100_000]


def write(store: LmdbStore, puts: list, applied: int) -> None:
    final = Checkpoint(applied_slot=applied, clock=applied, keys=[], value_of=lambda k: None, flush=False)
    store.checkpoint_chunk_job(puts, False, final)()


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}B")
def test_any_key_is_stored_loaded_and_deleted(tmp_path, key):
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    write(store, [(key, encode_record(Record("string", b"val", None, 7, None)))], 1)
    store.close()
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    loaded = store.load()
    assert loaded.applied_slot == 1
    assert loaded.keyspace.get(key).value == b"val"
    write(store, [(key, None)], 2)
    store.close()
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    assert store.load().keyspace.get(key) is None
    store.close()


def test_keys_that_look_alike_stay_apart(tmp_path):
    # A short key equal to another key's stored form must not overwrite it.
    import hashlib

    long_key = b"L" * 1000
    forged = b"h" + hashlib.sha256(long_key).digest()
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    write(store, [(long_key, encode_record(Record("string", b"long", None, 1, None))),
                  (forged, encode_record(Record("string", b"forged", None, 2, None)))], 1)
    ks = store.load().keyspace
    assert ks.get(long_key).value == b"long"
    assert ks.get(forged).value == b"forged"
    store.close()


def test_data_from_before_tagged_keys_is_upgraded(tmp_path):
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    store.close()
    env = lmdb.open(str(tmp_path / "state"), max_dbs=4, subdir=True)
    meta, state = env.open_db(b"meta"), env.open_db(b"state")
    with env.begin(write=True) as txn:
        txn.delete(b"key_format", db=meta)
        txn.put(b"old-key", encode_record(Record("string", b"old", None, 1, None)), db=state)
    env.close()
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    assert store.load().keyspace.get(b"old-key").value == b"old"
    store.close()


def test_promised_ballot_is_checksummed(tmp_path):
    from makod.storage.lmdb_store import StoreError

    store = LmdbStore(str(tmp_path), identity={"t": 1})
    store.persist(777, [(1, 777, b"")])
    assert store.load().promised == 777
    store.close()
    env = lmdb.open(str(tmp_path / "log"), max_dbs=4, subdir=True)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        raw = bytearray(txn.get(b"promised", db=meta))
        raw[7] ^= 1
        txn.put(b"promised", bytes(raw), db=meta)
    env.close()
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    with pytest.raises(StoreError, match="promised ballot fails its checksum"):
        store.load()
    store.close()
