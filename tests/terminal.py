"""Reading what a command showed on a pseudo-terminal (the `pty` module)."""

from __future__ import annotations

import os


def read_until_closed(primary: int) -> bytes:
    """Everything written to the terminal whose primary side is `primary`, once the command
    ended and the secondary side is closed; closes `primary`."""
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    return shown
