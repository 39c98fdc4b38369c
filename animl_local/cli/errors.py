"""What every command shares: exit codes and the user-fixable error."""

from __future__ import annotations

import signal
from typing import Any

# Documented in the README: 0 done, 1 failed, 2 usage (or a setting to fix), 3 not found.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3
# As shells report a process ended by SIGINT or SIGTERM: 128 + the signal's number.
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


class UserError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


class NotFound(UserError):
    """The stage or batch named does not exist; exit 3."""


NO_CREDENTIALS = ("no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY (a stage served locally by `animl-ingest serve` needs "
                  "none: set the AWS_ENDPOINT_URL it prints)")


def existing_stage(name: str) -> Any:
    """The stage named, checked to exist (NotFound otherwise)."""
    from animl_local.aws_stage import Stage, StageNotFound

    stage = Stage.named(name)
    try:
        stage.require_exists()
    except StageNotFound as exc:
        raise NotFound(str(exc)) from None
    return stage


def default_stage() -> str:
    """`local` when AWS_ENDPOINT_URL is a server on this machine (the stage `serve` serves:
    AWS itself needs no endpoint), else dev, the stage a developer works on."""
    from animl_local.aws_stage import local_endpoint
    from animl_local.local_run import LOCAL_STAGE

    return LOCAL_STAGE if local_endpoint() else "dev"


def served_stage_line(endpoint_url: str, region: str) -> str:
    """What a user pastes into another shell to operate the stage `serve` serves: the endpoint
    (operator commands then default to the local stage and need no credentials) and the
    region its ARNs are in."""
    return f"export AWS_ENDPOINT_URL={endpoint_url} AWS_DEFAULT_REGION={region}"
