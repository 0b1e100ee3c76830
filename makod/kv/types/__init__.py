"""One module per data type: its commands, and its value's ops (apply/undo/clone/encode).

Importing this package registers every data command in makod.kv.table.TABLE.
"""

from makod.kv.types import (  # noqa: F401
    bitmaps, dump, geo, geo_search, hashes, hll, keys, lists, sets, sort, streams, streams_groups, streams_info,
    memory, streams_read, strings, zsets, zsets_algebra, zsets_range,
)
