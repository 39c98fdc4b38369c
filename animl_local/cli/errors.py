"""What every command shares: exit codes and the user-fixable error."""

from __future__ import annotations

import signal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# As shells report a process ended by SIGINT or SIGTERM: 128 + the signal's number.
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


class UserError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""
