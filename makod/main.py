"""``makod``: run one replica in the foreground.

Usually started by ``makoctl cluster start``; run by hand as
``makod --config mako-data/cluster.yaml --node s0r0``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import ssl
import sys

import click

from makod import __version__, logs
from makod.config import ConfigError, load_cluster_secret, load_config_file, load_procedure_modules, secret_file_path


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Cluster YAML file.")
@click.option("--node", "node_name", required=True, help="Which replica of the config this process is.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory holding each node's LMDB files [default: the config file's directory].",
)
@click.option("--log-level", default=None, type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level [default: the config's log_level, info].")
@click.option("--log-format", default=None, type=click.Choice(["text", "json"]),
              help="Plain lines or JSON lines [default: the config's log_format, text].")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False),
              help="Write the log here, rotated at the config's log_max_mb [default: stderr, not rotated].")
@click.version_option(__version__, prog_name="makod")
def main(config_path: str, node_name: str, data_dir: str | None, log_level: str | None, log_format: str | None,
         log_file: str | None) -> None:
    """Run one makodb replica: a shard member that speaks Redis on its RESP port."""
    logging.basicConfig(
        level=getattr(logging, (log_level or "info").upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = load_config_file(config_path)
        cfg.replica(node_name)
        load_procedure_modules(cfg)
        secret = load_cluster_secret(cfg)
    except ConfigError as exc:
        click.echo(f"makod: bad config: {exc}", err=True)
        sys.exit(2)
    except KeyError:
        click.echo(f"makod: {config_path} has no replica named {node_name!r}", err=True)
        sys.exit(2)
    if secret is None:
        if len(cfg.replicas) > 1:
            click.echo(
                f"makod: no cluster secret: peer links must authenticate. Put one in {secret_file_path(cfg)} "
                "(makoctl cluster start makes it), or set cluster_secret or cluster_secret_file in "
                f"{config_path}",
                err=True,
            )
            sys.exit(2)
        secret = os.urandom(32)  # a lone replica has no peers to talk to
    logs.setup(node_name, log_level or cfg.log_level, log_format or cfg.log_format, log_file, cfg.log_max_mb,
               cfg.log_backups)
    from makod.server import Node
    from makod.storage.lmdb_store import StoreError

    # The storage writer thread needs the GIL back promptly when an fsync ends.
    sys.setswitchinterval(0.0005)
    # The keyspace is millions of long-lived objects without reference cycles:
    # the cyclic collector's full passes over them cost more than they find.
    # Survivors of each pass are frozen too (makod/gc_pauses.py).
    gc.set_threshold(100_000, 50, 100)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    try:
        node = Node(cfg, node_name, data_dir or os.path.dirname(os.path.abspath(config_path)), config_path,
                    secret=secret)
    except (StoreError, ConfigError) as exc:
        click.echo(f"makod: {exc}", err=True)
        sys.exit(2)
    except ssl.SSLError as exc:
        click.echo(f"makod: bad config: {config_path}: tls: cannot use the certificate, key or CA files ({exc})",
                   err=True)
        sys.exit(2)
    gc.collect()
    gc.freeze()  # what was loaded stays: never scan it again
    _log_slow_collections()
    try:
        asyncio.run(node.run())
    except OSError as exc:
        click.echo(f"makod: cannot listen: {exc}", err=True)
        sys.exit(1)


def _log_slow_collections() -> None:
    import time

    started: dict[str, float] = {}

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started["t"] = time.perf_counter()
        else:
            ms = (time.perf_counter() - started.get("t", time.perf_counter())) * 1000
            if ms > 50:
                logging.getLogger("makod").warning("gc generation %d took %.0f ms", info["generation"], ms)

    gc.callbacks.append(callback)


if __name__ == "__main__":
    main()
