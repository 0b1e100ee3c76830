"""Importing this package registers the session and server commands in makod.kv.table.TABLE.

Data commands live in the data model (makod.kv.types); see makod/commands.py.
"""

from resp.commands import acl_cmds, cluster, connection, observe, pubsub, server  # noqa: F401
from resp.commands import client_ctl  # noqa: F401  (after connection: it adds CLIENT subcommands)

__all__ = ["acl_cmds", "cluster", "connection", "observe", "pubsub", "server"]
