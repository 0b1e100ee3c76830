"""makoctl's consoles and its one way to fail: a red line on stderr and an exit code."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output gets a fixed width wide enough for the status table
# (rich falls back to 80 columns when it cannot ask a terminal).
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
