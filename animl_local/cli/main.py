"""`animl-ingest`: run a bulk upload through the whole stack on this machine, no AWS account;
operate a stage on AWS (or a served local one) with the same commands."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any, NoReturn

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


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that every `with` unwinds: temp files, worker
    processes and servers go with it. Not an Exception, as KeyboardInterrupt is not: on its way
    up nothing takes it for an error (the local run quiets the stand-in API's in-flight requests
    for an interruption, and logged a failed createImage's traceback for a SIGTERM)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    made = parser()
    if not argv:
        # As the AWS CLI: a missing command is a usage error (2), here with the command list.
        made.print_help(sys.stderr)
        return EXIT_USAGE
    args = made.parse_args(argv)
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
        _exit_now(EXIT_INTERRUPTED)
    except Terminated:
        print("animl-ingest: terminated", file=sys.stderr)
        _exit_now(EXIT_TERMINATED)
    except Exception as exc:  # one line for the user, details under --debug
        if args.debug:
            raise
        print(f"animl-ingest: unexpected {type(exc).__name__}: {exc} (run with --debug for "
              "details)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_now(status: int) -> NoReturn:
    """Ends the process once a signal has unwound every `with` (temp files, worker processes,
    servers, the stage's pool are gone by now). Threads of an execution the run stopped may still
    be finishing a Lambda's call against a stage that is gone; the interpreter would wait for
    them (seconds, past the 5 s a stop may take) for nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


EXAMPLES = {
    "run": "animl-ingest run ./cards --out ./animl-out/cards\n"
           "animl-ingest run cards.zip --serial CAM-0042 --out ./out --force",
    "upload": "animl-ingest upload ./cards --serial CAM-0042",
    "sample": "animl-ingest sample ./cards --count 12",
    "executions": "animl-ingest executions list --status failed",
    "executions list": "animl-ingest executions list --status failed --stage dev",
    "executions describe": "animl-ingest executions describe batch-<uuid> --html report.html",
    "executions history": "animl-ingest executions history batch-<uuid>",
    "stop": "animl-ingest stop batch-<uuid> --stage dev",
    "redrive": "animl-ingest redrive batch-<uuid>",
    "reprocess": "animl-ingest reprocess batch-<uuid> --serial CAM-0042 \\\n"
                 '    --reason "Unknown Serial Number"',
    "parking-lot": "animl-ingest parking-lot replay --stage dev",
    "parking-lot replay": "animl-ingest parking-lot replay --stage dev",
    "serve": "animl-ingest serve --port 5000",
    "deploy": "animl-ingest deploy --stage dev",
    "teardown": "animl-ingest teardown --stage prod --yes",
}

# Help for arguments that mean the same in every command that takes them (one place each).
SHARED_HELP = {
    "stage": "the stage to operate on (its entry in infrastructure/stages.json)",
    "batch_id": "the batch's id, batch-<uuid> (as `executions list` shows it)",
    "path": "a .zip archive or a folder of images",
    "serial": "serial number override for every image of the batch",
    "folder": "where to write them",
    "count": "how many images",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; an option's default shown when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS)
        if shown and action.option_strings and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="animl-ingest", formatter_class=HelpFormatter,
        description="Run a bulk upload through the whole stack on this machine, no AWS account;\n"
                    "operate a stage on AWS (or a served local one) with the same commands.",
        epilog="Run `animl-ingest COMMAND --help` for a command's options and an example.\n"
               "Exit codes: 0 done, 1 failed, 2 usage (or a setting to fix), 3 not found,\n"
               "130 interrupted (Ctrl-C), 143 terminated (SIGTERM).")
    made.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    add_global_options(made, default=False)
    commands = made.add_subparsers(required=True, metavar="COMMAND", title="commands")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    explain_commands(commands, "")
    return made


def add_global_options(command: argparse.ArgumentParser, default: Any) -> None:
    """Options every command takes, before or after its name. After it they default to
    SUPPRESS, so that they never overwrite what was given before it."""
    command.add_argument("--debug", action="store_true", default=default,
                         help="log everything, show tracebacks")


def explain_commands(commands: argparse._SubParsersAction, prefix: str) -> None:
    """Each command's description (its one-line help), example, shared option help and the
    global options, down every level of subcommands."""
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    for name, command in commands.choices.items():
        path = f"{prefix}{name}"
        command.formatter_class = HelpFormatter
        command.description = command.description or _sentence(helps.get(name))
        command.epilog = f"example:\n  {EXAMPLES[path].replace(chr(10), chr(10) + '  ')}"
        for action in command._actions:
            if action.help is None:
                action.help = SHARED_HELP.get(action.dest)
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        for sub in nested:
            sub.help = sub.help or f"what to do with {name}"
            explain_commands(sub, f"{path} ")
        if not nested:
            add_global_options(command, default=argparse.SUPPRESS)


def _sentence(text: str | None) -> str | None:
    return f"{text[0].upper()}{text[1:]}." if text else None


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("animl-ingest")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


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
