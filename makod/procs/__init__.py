"""Built-in stored procedures. Importing this package registers them all.

Every makod imports it at start, so a procedure is available on every node.
A cluster's own procedures live in the modules its config names under
``procedure_modules`` (see examples/procedures.py).
"""

from makod.procs import bank, micro, tpcc  # noqa: F401  (registration is the import)
