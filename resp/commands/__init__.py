"""Importing this package registers every command in resp.table.TABLE."""

from resp.commands import acl_cmds, connection, hashes, keys, server, strings  # noqa: F401
