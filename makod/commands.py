"""Importing this module fills the command table with every command makodb has.

The data model's commands (makod.kv.types, makod.kv.scripting), the session and server commands
of the RESP layer (resp.commands) and MAKO (makod.core.mako_cmd) register
themselves in ``makod.kv.table.TABLE`` when imported; drivers import this.
"""

import makod.core.mako_cmd  # noqa: F401
import makod.kv.scripting.commands  # noqa: F401
import makod.kv.types  # noqa: F401
import resp.commands  # noqa: F401
