"""`animl-ingest`: run a bulk upload through the whole stack on this machine, no AWS account;
operate a stage on AWS (or a served local one) with the same commands."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from animl_local.cli import deploy, executions, operate, run, serve
from animl_local.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_TERMINATED,
    EXIT_USAGE,
    NO_CREDENTIALS,
    NotFound,
    UserError,
)
from animl_local.secret_redaction import redact_handlers

COMMAND_GROUPS = (run, executions, operate, serve, deploy)


class Terminated(Exception):
    """SIGTERM, raised where the process is so that every `with` unwinds: temp files, worker
    processes and servers go with it."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.debug)
    previous = signal.signal(signal.SIGTERM, _terminate)
    from botocore.exceptions import NoCredentialsError

    try:
        return int(args.command(args))
    except NotFound as exc:
        print(f"animl-ingest: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except NoCredentialsError:
        print(f"animl-ingest: {NO_CREDENTIALS}", file=sys.stderr)
        return EXIT_USAGE
    except UserError as exc:
        print(f"animl-ingest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("animl-ingest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("animl-ingest: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # one line for the user, details under --debug
        if args.debug:
            raise
        print(f"animl-ingest: unexpected {type(exc).__name__}: {exc} (run with --debug for "
              "details)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="animl-ingest", description=__doc__)
    made.add_argument("--debug", action="store_true", help="log everything, show tracebacks")
    commands = made.add_subparsers(required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return made


def configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # Before anything logs: botocore's wire log would otherwise show secrets under --debug.
    redact_handlers(logging.getLogger())
    if not debug:
        # The handlers log at INFO for CloudWatch; here the command's own lines say enough.
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.WARNING)
        # The engine logs every failed state as an ERROR; the run's outcome says it once.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
