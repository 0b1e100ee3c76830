"""Built-in stored procedures. Importing this package registers them all.

Every makod imports it at start, so a procedure is available on every node.
"""

import importlib

_MODULES = ["makod.procs.bank", "makod.procs.tpcc", "makod.procs.micro"]

for _module in _MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # a module not written yet
        if exc.name != _module:
            raise
