"""Who may stop a running script, and when (the time limit and SCRIPT KILL).

A script runs inside one transaction, on the event loop's thread: nothing
else on its node runs meanwhile. The engine's instruction hook calls
``GUARD.check()`` every so many Lua instructions; that is the only moment a
script can be stopped. The default guard never stops anything (the
simulator and in-process tests run scripts to the end, deterministically);
the real server installs one (makod/net/script_busy.py) that, past
``busy-reply-threshold``, answers other clients ``-BUSY`` from a side thread
and lets SCRIPT KILL / FUNCTION KILL stop the script: ``check()`` then raises
``Abort``, which undoes everything the script wrote (Redis refuses to kill a
script that wrote; makodb can, since a transaction's writes have exact undo).
"""

from __future__ import annotations



class ScriptGuard:
    """No time limit, no kill: scripts run to the end."""

    def begin(self, kind: str, name: str) -> None:
        """A script starts: ``kind`` is "eval" or "function"; ``name`` the
        function's name or the script's SHA1."""

    def check(self) -> None:
        """Called from the engine's hook; raise to stop the script."""

    def end(self) -> None:
        """The script returned (or failed)."""



GUARD: list[ScriptGuard] = [ScriptGuard()]


def install(guard: ScriptGuard) -> None:
    GUARD[0] = guard


def current() -> ScriptGuard:
    return GUARD[0]
