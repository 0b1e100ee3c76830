"""The data model: values, records, the keyspace, commands, errors, replies.

Below both the RESP layer (resp/) and the transaction protocols
(makod/core/): it knows nothing of sockets, sessions, Paxos or transactions.
A command handler sees only a ``KeyContext`` (records.py), which a protocol
core implements; the core sees only ``CommandSpec`` entries of the table
(table.py) and the ops of records.py, which the keyspace applies and undoes.
"""
