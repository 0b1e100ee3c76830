"""Every error text makodb sends to a client, in one place.

Redis clients parse these (redis-py maps prefixes such as WRONGTYPE, NOAUTH,
EXECABORT, TRYAGAIN to exception classes), so the wording follows Redis's own
(src/server.c, src/multi.c, src/t_string.c, ...) byte for byte. A text with no
upper-case code in front gets ``ERR `` prepended when it is encoded.
"""

from __future__ import annotations


class CommandError(Exception):
    """Raised by a command handler; becomes an error reply with this text.

    ``text`` is the whole error line without the leading ``-`` (e.g.
    ``"WRONGTYPE Operation against a key holding the wrong kind of value"``).
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    @property
    def code(self) -> str:
        """The error's code: its leading upper-case word (``ERR`` when it has none)."""
        return error_code(self.text)

    @property
    def retriable(self) -> bool:
        """Would the same command, sent again unchanged, possibly succeed?"""
        return self.code in RETRIABLE_CODES


class Abort(Exception):
    """The transaction gives up: every write it made is undone.

    ``reply`` is the error the client gets: ``ABORT <reason>`` for a stored
    procedure that gave up, an ERR naming a procedure that failed, or a
    script stopped by SCRIPT KILL.
    """

    def __init__(self, reason: str, reply: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply if reply is not None else f"ABORT {reason}"


# Codes a client may retry unchanged: the cluster was busy, electing or loading,
# or a conflicting transaction won. (redis-py retries TRYAGAIN and CLUSTERDOWN
# on its own in cluster mode.) CLUSTERDOWN here can also mean "outcome unknown"
# (see CLUSTERDOWN_UNKNOWN_OUTCOME): retrying a non-idempotent write is then the
# caller's decision, as with any lost connection.
RETRIABLE_CODES = frozenset({"TRYAGAIN", "CLUSTERDOWN", "LOADING", "BUSY", "MASTERDOWN"})


def error_code(text: str) -> str:
    """The code of an error line (``"WRONGTYPE ..." -> "WRONGTYPE"``, ``"no such key" -> "ERR"``)."""
    word = text.split(" ", 1)[0]
    return word if word and word.isupper() and word.isalpha() else "ERR"


class ProtocolError(Exception):
    """The client broke the RESP framing; the reply is sent, then the connection closed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.text = f"ERR Protocol error: {detail}"


# -- generic ---------------------------------------------------------------
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
INCR_FLOAT_NAN = "ERR increment would produce NaN or Infinity"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NO_SUCH_KEY = "ERR no such key"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range"
SELECT_NOT_ALLOWED = "ERR SELECT is not allowed in cluster mode"
INVALID_CURSOR = "ERR invalid cursor"
COUNT_NOT_POSITIVE = "ERR value is out of range, must be positive"
SLOWLOG_COUNT = "ERR count should be greater than or equal to -1"
NX_XX_GT_LT = "ERR NX and XX, GT or LT options at the same time are not compatible"
GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
EXPIRE_OPTIONS_CONFLICT = NX_XX_GT_LT


def unknown_command(name: bytes | str, args: list[bytes]) -> str:
    """Redis's text: name as sent, then each argument quoted and followed by a space.

    Redis caps the argument list at 128 characters (src/server.c:
    ``processCommand``: "args beginning with" built with a 128-byte limit).
    """
    name_s = _printable(name)
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        remaining = 128 - len(shown)
        shown += f"'{_printable(arg)[:remaining]}' "
    return f"ERR unknown command '{name_s}', with args beginning with: {shown}"


def wrong_arity(name: str) -> str:
    return f"ERR wrong number of arguments for '{name.lower()}' command"


def unknown_subcommand(sub: bytes | str, command: str) -> str:
    return f"ERR unknown subcommand '{_printable(sub)}'. Try {command.upper()} HELP."


def wrong_arity_subcommand(command: str, sub: str) -> str:
    return f"ERR wrong number of arguments for '{command.lower()}|{sub.lower()}' command"


def invalid_expire(command: str) -> str:
    return INVALID_EXPIRE.format(command.lower())


# -- transactions (src/multi.c) --------------------------------------------
MULTI_NESTED = "ERR MULTI calls can not be nested"
EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
NOT_ALLOWED_IN_MULTI = "ERR Command not allowed inside a transaction"

# -- auth and connection ---------------------------------------------------
NOAUTH = "NOAUTH Authentication required."
NOPERM_COMMAND = "NOPERM User {} has no permissions to run the '{}' command"
NOPERM_KEY = "NOPERM No permissions to access a key"
NOPERM_CHANNEL = "NOPERM No permissions to access a channel"
ACL_SETUSER = "ERR Error in ACL SETUSER modifier '{}': {}"
ACL_DEFAULT_NOT_REMOVABLE = "ERR The 'default' user cannot be removed"
ACL_UNKNOWN_CATEGORY = "ERR Unknown category '{}'"
ACL_GENPASS_BITS = ("ERR ACL GENPASS argument must be the number of bits for the output password, "
                    "a positive number up to 4096")
ACL_USER_NOT_FOUND = "ERR User '{}' not found"
ACL_COMMAND_NOT_FOUND = "ERR Command '{}' not found"
ACL_NO_FILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via "
               "the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration "
               "file set) in order to store users in the Redis configuration.")
# Redis's reply while its AOF cannot be written (src/server.c, writeCommandsDeniedByDiskError).
MISCONF_WRITE = "MISCONF Errors writing to the AOF file: {}"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
AUTH_NOT_CONFIGURED = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
NOPROTO = "NOPROTO unsupported protocol version"
PROTOCOL_VERSION_NOT_INTEGER = "ERR Protocol version is not an integer or out of range"
CLIENT_NAME_SPACES = "ERR Client names cannot contain spaces, newlines or special characters."
CONFIG_UNKNOWN_PARAM = "ERR Unknown option or number of arguments for CONFIG SET - '{}'"
CONFIG_INVALID_VALUE = "ERR CONFIG SET failed (possibly related to argument '{}') - {}"

# -- protocol (src/networking.c); ProtocolError adds the "ERR Protocol error: " prefix
PROTO_INVALID_MULTIBULK = "invalid multibulk length"
PROTO_INVALID_BULK = "invalid bulk length"
PROTO_UNBALANCED_QUOTES = "unbalanced quotes in request"
PROTO_TOO_BIG_INLINE = "too big inline request"
PROTO_TOO_BIG_MBULK = "too big mbulk count string"
PROTO_TOO_BIG_BULK = "too big bulk count string"


def proto_expected_dollar(got: bytes) -> str:
    return f"expected '$', got '{_printable(got[:1])}'"


# -- distributed operation ---------------------------------------------------
# TRYAGAIN, CLUSTERDOWN and LOADING are prefixes redis-py maps to its own
# exception classes, so scripts can branch on them without parsing text.
TRYAGAIN_ROLLED_BACK = (
    "TRYAGAIN transaction rolled back: shard {} lost its leader before the transaction "
    "was replicated; nothing of it was applied, retry it"
)
TRYAGAIN_CONFLICT = "TRYAGAIN transaction aborted by a conflicting transaction; retry it"
TRYAGAIN_TIMED_OUT = "TRYAGAIN transaction aborted: a shard did not answer in time; retry it"
TRYAGAIN_BUSY_KEY = "TRYAGAIN key is locked by a distributed transaction in progress; retry it"
TRYAGAIN_INDEXING = "TRYAGAIN this node is still indexing its keys (for SCAN, RANDOMKEY and range reads); retry it"
TRYAGAIN_SLOTS_MOVING = "TRYAGAIN slots of this shard are moving to another shard; retry it"
TRYAGAIN_SLOT_MOVING = "TRYAGAIN the key's slot is moving between shards; retry it"
CLUSTERDOWN_NO_LEADER = "CLUSTERDOWN shard {} has no leader reachable from this node"
CLUSTERDOWN_UNKNOWN_OUTCOME = (
    "CLUSTERDOWN shard {} lost its leader before the write was replicated; "
    "its outcome is unknown"
)
LOADING = "LOADING makodb is loading the dataset in memory"
# What one transaction (every command is one) may write, and read from other
# shards: its bytes travel in one replication slot or one peer message, and a
# leader busy encoding, sending and syncing them for longer than an election
# timeout is deposed (a 64 MB SET was). Not retryable: the same command fails again.
TXN_WRITES_TOO_LARGE = (
    "ERR transaction too large: it writes {} bytes (encoded); the limit is {} (max-txn-bytes)"
)
TXN_READS_TOO_LARGE = (
    "ERR transaction too large: it reads {} bytes (encoded) from shard {}; the limit is {} (max-txn-bytes)"
)
REQUEST_TOO_LARGE_TO_FORWARD = (
    "ERR request too large: {} bytes (encoded) cannot go to another node (limit {}, max-txn-bytes); "
    "send it to shard {}'s leader directly"
)
REPLY_TOO_LARGE_TO_FORWARD = (
    "ERR reply too large: {} bytes (encoded) cannot go to another node (limit {}, 8x max-txn-bytes); "
    "the command ran on shard {}'s leader: send it there directly"
)
TIMEOUT = "TIMEOUT no reply from shard {} within {} ms; the outcome is unknown"
UNKNOWN_PROCEDURE = "ERR unknown procedure '{}'"

# Moving slots (MAKO SLOTS, MAKO ROUTE; makoctl cluster reshard).
SLOTS_NOT_MOVABLE = "ERR slots move only between shards of a cluster of two or more, under protocol mako or 2pc-paxos"
SLOTS_BAD_SLOT = "ERR invalid slot '{}': a slot is an integer from 0 to 16383"
SLOTS_BAD_RANGE = "ERR invalid slot range {}-{}: the first slot must not be above the last"
SLOTS_BAD_SHARD = "ERR invalid shard '{}': name another shard of the cluster than this one ({})"
SLOTS_WRONG_STATE = "ERR slots {}-{} of shard {} are {}, not {}"
SLOTS_BAD_MOVE = "ERR invalid move id '{}': a move id is an integer from 1 to 2^62-1"
SLOTS_BAD_COUNT = "ERR COUNT must be a positive integer"
SLOTS_BAD_PAIRS = "ERR IMPORT takes key and record pairs"
SLOTS_KEY_OUTSIDE = "ERR an imported key is not in slots {}-{}"
SLOTS_BAD_RECORD = "ERR an imported record is damaged: {}"
SLOTS_UNKNOWN_STEP = "ERR unknown MAKO SLOTS step '{}' (SHOW, IMPORTING, FREEZE, EXPORT, IMPORT, OWN, DROP, UNFREEZE)"
SLOTS_WRONG_ARGS = "ERR wrong number of arguments for MAKO SLOTS {}"

# Membership (MAKO MEMBER, MAKO TOPOLOGY; makoctl cluster add-replica / remove-replica).
NOT_SHARD_LEADER = "ERR this node is not its shard's leader"
NO_REPLICA_WITH_ID = ("ERR no replica with id {} in this node's configuration "
                      "(makoctl cluster add-replica writes it, then MAKO TOPOLOGY RELOAD)")
REPLICA_OF_OTHER_SHARD = "ERR replica {} belongs to shard {}, not {}"
MEMBER_ALREADY = "ERR replica {} is already a {} of shard {}"
MEMBER_NOT_LEARNER = "ERR replica {} is not a learner of shard {} (MAKO MEMBER ADD it first)"
MEMBER_NOT_MEMBER = "ERR replica {} is not a member of shard {}"
MEMBER_CHANGE_REFUSED = "ERR membership change refused: {}"
MEMBER_BAD_ACTION = "ERR unknown MEMBER action '{}' (ADD, PROMOTE or REMOVE)"
TOPOLOGY_BAD_FILE = "ERR cannot reload the topology: {}"
PROCEDURE_BAD_ARGS = "ERR procedure arguments are not valid msgpack"
# A procedure raised (its writes are undone): name it and what it raised.
PROCEDURE_FAILED = "ERR procedure '{}' failed: {}"
# protocol: luigi orders a transaction by timestamp before it runs, so it
# must know every key (and range) the transaction may touch up front.
LUIGI_NO_FOOTPRINT = "ERR protocol luigi needs a transaction's keys before it runs: {}"
LUIGI_OUTSIDE_FOOTPRINT = "ERR protocol luigi: the transaction touched a key outside its declared footprint ({})"
LUIGI_QUEUE_FULL = "TRYAGAIN too many transactions waiting for their timestamp at shard {}; retry it"


def _printable(value: bytes | str) -> str:
    """Render user text for an error line: \\r and \\n become spaces (Redis does the same)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.replace("\r", " ").replace("\n", " ")


def sanitize(text: str) -> str:
    """Error replies are a single line: replace CR and LF as Redis's addReplyError does."""
    return text.replace("\r", " ").replace("\n", " ")


# -- data commands (added) ---------------------------------------------------
# DECRBY with LLONG_MIN: negating it would overflow (src/t_string.c).
DECR_OVERFLOW = "ERR decrement would overflow"
# HINCRBYFLOAT with an infinite increment (src/t_hash.c).
HASH_INCR_NAN = "ERR value is NaN or Infinity"
# HRANDFIELD ... WITHVALUES with |count| > LONG_MAX/2 (src/t_hash.c).
VALUE_OUT_OF_RANGE = "ERR value is out of range"
# makod only (makod/kv/args.py RANDOM_PICKS_MAX): a negative count's picks are bounded.
RANDOM_PICKS_TOO_MANY = "ERR count asks for {} elements with repetition; makodb returns at most {} in one reply"
# EXPIRE family (src/expire.c: parseExtendedExpireArgumentsOrReply).
GT_AND_LT = "ERR GT and LT options at the same time are not compatible"


def unsupported_option(opt: bytes | str) -> str:
    """EXPIRE family: an unknown trailing option, quoted as sent."""
    return f"ERR Unsupported option {_printable(opt)}"


def value_out_of_range_between(low: int, high: int) -> str:
    """getRangeLongFromObjectOrReply's text (sic: "must between")."""
    return f"ERR value is out of range, value must between {low} and {high}"


# -- blocking commands (src/timeout.c getTimeoutFromObjectOrReply, src/blocked.c) ----
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
UNBLOCK_REASON = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"


# -- streams (src/t_stream.c) ----------------------------------------------------
STREAM_INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
STREAM_INVALID_START = "ERR invalid start ID for the interval"
STREAM_INVALID_END = "ERR invalid end ID for the interval"
STREAM_XADD_ID_TOO_SMALL = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
STREAM_XADD_ZERO_ID = "ERR The ID specified in XADD must be greater than 0-0"
STREAM_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
STREAM_MAXLEN_AND_MINID = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
STREAM_MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
STREAM_LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
STREAM_LIMIT_WITHOUT_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
STREAM_XTRIM_WITHOUT_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
STREAM_LIMIT_WITHOUT_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
STREAM_ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"
STREAM_XSETID_BELOW_MAX_DELETED = "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
STREAM_XSETID_TOO_SMALL = "ERR The ID specified in XSETID is smaller than the target stream top item"
STREAM_XSETID_ADDED_TOO_SMALL = "ERR The entries_added specified in XSETID is smaller than the target stream length"
STREAM_TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
STREAM_XREAD_UNBALANCED = (
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
)
STREAM_GROUP_ONLY_XREADGROUP = "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
STREAM_NOACK_ONLY_XREADGROUP = "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
STREAM_MISSING_GROUP = "ERR Missing GROUP option for XREADGROUP"
STREAM_DOLLAR_IN_XREADGROUP = (
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
    "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just "
    "return an empty result set."
)
STREAM_GT_ONLY_XREADGROUP = (
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
)
STREAM_NOGROUP_XREADGROUP = "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option"
STREAM_NOGROUP = "NOGROUP No such key '{}' or consumer group '{}'"
STREAM_NOGROUP_FOR_KEY = "NOGROUP No such consumer group '{}' for key name '{}'"
STREAM_BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
STREAM_XGROUP_NEEDS_KEY = (
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use "
    "the MKSTREAM option to create an empty stream automatically."
)
STREAM_ENTRIESREAD_NEGATIVE = "ERR value for ENTRIESREAD must be positive or -1"
STREAM_XCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XCLAIM"
STREAM_XCLAIM_OPTION = "ERR Invalid {} option argument for XCLAIM"
STREAM_XCLAIM_UNKNOWN_OPTION = "ERR Unrecognized XCLAIM option '{}'"
STREAM_XAUTOCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XAUTOCLAIM"
STREAM_XAUTOCLAIM_COUNT = "ERR COUNT must be > 0"


def subcommand_syntax(sub: bytes | str, command: str) -> str:
    """addReplySubcommandSyntaxError's text."""
    return (
        f"ERR unknown subcommand or wrong number of arguments for '{_printable(sub)[:128]}'. "
        f"Try {command.upper()} HELP."
    )


def nogroup(template: str, key: bytes, group: bytes) -> str:
    return template.format(_printable(key), _printable(group))


# A handler's bug: the request fails, the server keeps serving (makodb's own).
INTERNAL_ERROR = "ERR internal error: {}: {}"

# -- scripting commands (src/eval.c evalGenericCommand, src/functions.c) ---------------
NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args"
NUMKEYS_NEGATIVE = "ERR Number of keys can't be negative"
NOTBUSY = "NOTBUSY No scripts in execution right now."
SCRIPT_FLUSH_OPTION = "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
FUNCTION_FLUSH_OPTION = "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
FUNCTION_RESTORE_POLICY = "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
FUNCTION_LIST_UNKNOWN = "ERR Unknown argument {}"
FUNCTION_LIST_NO_PATTERN = "ERR library name argument was not given"
BUSY_SCRIPT = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
SCRIPT_KILLED = "ERR Script killed by user with SCRIPT KILL..."
SCRIPT_KILLED_WROTE = ("ERR Script killed by user with SCRIPT KILL... "
                       "(makodb undid every write it had made)")

# -- DUMP / RESTORE (src/cluster.c: restoreCommand) ------------------------------------
DUMP_PAYLOAD_WRONG = "ERR DUMP payload version or checksum are wrong"
BAD_DATA_FORMAT = "ERR Bad data format"
BUSYKEY = "BUSYKEY Target key name already exists."
INVALID_TTL = "ERR Invalid TTL value, must be >= 0"
INVALID_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
INVALID_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"
# makodb's own: a kind with no RDB encoding (streams, for now).
DUMP_UNSUPPORTED = "ERR DUMP is not supported for {} values"

# -- CLUSTER (src/cluster.c: clusterCommand) --------------------------------------------
INVALID_SLOT = "ERR Invalid slot"
INVALID_SLOT_OR_COUNT = "ERR Invalid slot or number of keys"

# -- scripting (src/eval.c, src/script_lua.c, src/function_lua.c) --
SCRIPT_NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
SCRIPT_BAD_ARG_TYPE = "ERR Lua redis lib command arguments must be strings or integers"
SCRIPT_UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
SCRIPT_WRONG_ARITY = "ERR Wrong number of args calling Redis command from script"
SCRIPT_NOT_ALLOWED = "ERR This Redis command is not allowed from script"
SCRIPT_WRITE_IN_READONLY = "ERR Write commands are not allowed from read-only scripts."
SCRIPT_PING_ARITY = "ERR wrong number of arguments for 'ping' command"
SCRIPT_COMPILE = "ERR Error compiling script (new function): {}"
SCRIPT_NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
SCRIPT_SHEBANG_INVALID = "ERR Invalid script shebang"
SCRIPT_SHEBANG_ENGINE = "ERR Unexpected engine in script shebang: {}"
SCRIPT_SHEBANG_FLAG = "ERR Unexpected flag in script shebang: {}"
SCRIPT_SHEBANG_OPTION = "ERR Unknown lua shebang option: {}"
# makodb's own: Redis 7.0 crashes on error({}) and has no script memory limit.
SCRIPT_ERROR_NOT_STRING = "ERR Error running script: the error object has no 'err' string field"
SCRIPT_OOM = "ERR Error running script: out of memory (the Lua memory limit is {} bytes)"
SCRIPT_STACK_LIMIT = "ERR reached lua stack limit"
FUNCTION_NOT_FOUND = "ERR Function not found"
FUNCTION_RO_WRITE = "ERR Can not execute a script with write flag using *_ro command."
LIBRARY_MISSING_METADATA = "ERR Missing library metadata"
LIBRARY_INVALID_METADATA = "ERR Invalid library metadata"
LIBRARY_NAME_TWICE = "ERR Invalid metadata value, name argument was given multiple times"
LIBRARY_BAD_METADATA = "ERR Invalid metadata value given: {}"
LIBRARY_NO_NAME = "ERR Library name was not given"
LIBRARY_ENGINE_NOT_FOUND = "ERR Engine '{}' not found"
LIBRARY_BAD_NAME = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
LIBRARY_EXISTS = "ERR Library '{}' already exists"
LIBRARY_NOT_FOUND = "ERR Library not found"
LIBRARY_COMPILE = "ERR Error compiling function: {}"
LIBRARY_REGISTER = "ERR Error registering functions: {}"
LIBRARY_NO_FUNCTIONS = "ERR No functions registered"
LIBRARY_FUNCTION_EXISTS = "ERR Function {} already exists"
FUNCTION_RESTORE_PAYLOAD = DUMP_PAYLOAD_WRONG
FUNCTION_RESTORE_TYPE = "ERR given type is not a function"
FUNCTION_RESTORE_PREGA = "ERR Pre-GA function format not supported"
FUNCTION_RESTORE_EXISTS = "ERR Library {} already exists"
