"""Call the procedures of ``shop_procs.py`` from Python.

    mkdir -p shop-data && cp examples/shop_procs.py shop-data/
    makoctl cluster start --data-dir shop-data --config examples/shop_cluster.yaml
    python examples/shop_client.py --port 7479

Each call is one transaction run inside makod; calls reach any node as
``MAKO CALL <name> <msgpack args>`` over the Redis port.
"""

from __future__ import annotations

import argparse
import sys

from makod.client import MakoClient, ProcedureAborted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7479)
    args = parser.parse_args()

    with MakoClient(host=args.host, port=args.port) as shop:
        print("restocked:", shop.call("shop.restock", {"items": {"apple": 5, "pear": 2, "fig": 1}}))
        print("ordered:", shop.call("shop.order", {"order_id": "o1", "lines": {"apple": 2, "pear": 1}}))
        try:
            shop.call("shop.order", {"order_id": "o2", "lines": {"apple": 1, "fig": 3}})
        except ProcedureAborted as exc:
            print("refused:", exc)  # nothing was reserved, not even the apple
        levels = shop.call("shop.stock")
        print("stock:", levels)
        return 0 if levels == {"apple": 3, "fig": 1, "pear": 1} else 1


if __name__ == "__main__":
    sys.exit(main())
