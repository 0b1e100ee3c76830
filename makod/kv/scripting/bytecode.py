"""Turn Lua 5.1 tail calls into plain calls in a compiled chunk.

Redis's redis.call is a C function: ``return redis.call(...)`` keeps the
script's frame, so an error names the script's line. makodb's redis.call is
a Lua function, and a Lua tail call would replace the script's frame (the
error would say ``=(tail call):-1``). So every OP_TAILCALL of a script is
rewritten as OP_CALL with all results kept; Lua 5.1 always emits
``RETURN A 0`` right after a tail call, which then returns them all: the
same results, one stack frame more.

The chunk comes from string.dump (the header says int and size_t widths).
"""

from __future__ import annotations

OP_CALL = 28
OP_TAILCALL = 29


class _Patcher:
    def __init__(self, data: bytes) -> None:
        if data[:5] != b"\x1bLuaQ":
            raise ValueError("not a Lua 5.1 chunk")
        self.buf = bytearray(data)
        self.little = data[6] == 1
        self.int_size = data[7]
        self.size_t = data[8]
        self.instr = data[9]
        self.num_size = data[10]
        self.pos = 12

    def _uint(self, size: int) -> int:
        raw = self.buf[self.pos : self.pos + size]
        self.pos += size
        return int.from_bytes(raw, "little" if self.little else "big")

    def _string(self) -> None:
        n = self._uint(self.size_t)
        self.pos += n

    def function(self) -> None:
        self._string()  # source
        self.pos += 2 * self.int_size + 4  # line defined, last line, nups, params, vararg, stack

        n = self._uint(self.int_size)
        order = "little" if self.little else "big"
        for _ in range(n):
            at = self.pos
            ins = int.from_bytes(self.buf[at : at + self.instr], order)
            if ins & 0x3F == OP_TAILCALL:
                ins = (ins & ~0x3F) | OP_CALL
                self.buf[at : at + self.instr] = ins.to_bytes(self.instr, order)
            self.pos += self.instr
        for _ in range(self._uint(self.int_size)):  # constants
            kind = self.buf[self.pos]
            self.pos += 1
            if kind == 1:
                self.pos += 1
            elif kind == 3:
                self.pos += self.num_size
            elif kind == 4:
                self._string()
        for _ in range(self._uint(self.int_size)):  # nested functions
            self.function()
        lines = self._uint(self.int_size)  # line info
        self.pos += lines * self.int_size
        for _ in range(self._uint(self.int_size)):  # locals
            self._string()
            self.pos += 2 * self.int_size
        for _ in range(self._uint(self.int_size)):  # upvalue names
            self._string()


def without_tail_calls(chunk: bytes) -> bytes:
    p = _Patcher(chunk)
    p.function()
    if p.pos != len(chunk):
        raise ValueError("chunk not parsed to its end")
    return bytes(p.buf)
