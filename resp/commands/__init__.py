"""Importing this package registers the session and server commands in makod.kv.table.TABLE.

Data commands live in the data model (makod.kv.types); see makod/commands.py.
"""

from resp.commands import acl_cmds, cluster, connection, observe, pubsub, server  # noqa: F401

__all__ = ["acl_cmds", "cluster", "connection", "observe", "pubsub", "server"]
