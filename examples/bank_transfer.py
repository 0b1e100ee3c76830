"""Cross-shard bank transfers with plain redis-py: WATCH, GET, MULTI, SET, EXEC.

    makoctl cluster start                      # 2 shards x 3 replicas on :7379..
    python examples/bank_transfer.py --port 7379 --accounts 20 --transfers 500

The accounts are spread over both shards (no hash tags), so most transfers
touch two shards; makodb runs each EXEC as one atomic, serializable
transaction across them. A transfer whose WATCHed balances changed since it
read them gets a null EXEC reply and is retried, exactly as on one Redis.
At the end one MULTI/EXEC reads every balance: the sum never changes.
"""

from __future__ import annotations

import argparse
import random
import sys

import redis


def open_accounts(r: redis.Redis, accounts: list[str], balance: int) -> int:
    with r.pipeline(transaction=True) as p:
        for name in accounts:
            p.set(name, balance)
        p.execute()
    return balance * len(accounts)


def transfer(r: redis.Redis, src: str, dst: str, amount: int) -> bool:
    """Move ``amount`` from src to dst; False if src has too little."""
    with r.pipeline(transaction=True) as p:
        while True:
            try:
                p.watch(src, dst)
                src_balance, dst_balance = int(p.get(src)), int(p.get(dst))
                if src_balance < amount:
                    p.unwatch()
                    return False
                p.multi()
                p.set(src, src_balance - amount)
                p.set(dst, dst_balance + amount)
                p.execute()
                return True
            except redis.WatchError:
                continue  # someone moved money in between: read again


def snapshot_total(r: redis.Redis, accounts: list[str]) -> int:
    """Every balance read in one transaction: a consistent cut across shards."""
    with r.pipeline(transaction=True) as p:
        for name in accounts:
            p.get(name)
        return sum(int(v) for v in p.execute())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7379)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--transfers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    r = redis.Redis(host=args.host, port=args.port, decode_responses=True)
    accounts = [f"example:acct:{i}" for i in range(args.accounts)]
    total = open_accounts(r, accounts, 100)
    done = refused = 0
    for _ in range(args.transfers):
        src, dst = rng.sample(accounts, 2)
        if transfer(r, src, dst, rng.randint(1, 30)):
            done += 1
        else:
            refused += 1
    seen = snapshot_total(r, accounts)
    print(f"{done} transfers, {refused} refused for lack of funds; total {seen} (expected {total})")
    return 0 if seen == total else 1


if __name__ == "__main__":
    sys.exit(main())
