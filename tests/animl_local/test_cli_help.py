"""`animl-ingest` explains itself: descriptions, examples, option help, --version, global options
after the command, case-insensitive statuses, the command list when called bare."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from importlib.metadata import version
from pathlib import Path

import pytest

from animl_local.cli import main
from animl_local.cli.main import parser
from tests.terminal import read_until_closed

COMMANDS = ["run", "upload", "sample", "executions", "stop", "redrive", "reprocess",
            "parking-lot", "serve", "deploy", "teardown"]


def every_command(made: argparse.ArgumentParser,
                  path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in made._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{path}{name}", sub))
                found += every_command(sub, f"{path}{name} ")
    return found


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as ended:
        main([*argv, "--help"])
    assert ended.value.code == 0
    return capsys.readouterr().out


def test_bare_animl_ingest_lists_the_commands_and_exits_2(capsys) -> None:
    assert main([]) == 2  # as the AWS CLI: a missing command is a usage error
    err = capsys.readouterr().err
    for command in COMMANDS:
        assert f"\n    {command}" in err, command
    assert "COMMAND --help" in err
    # The exit codes the README documents, every one.
    codes = " ".join(err.split()).split("Exit codes: ", 1)[1]
    for code in ("0 done", "1 failed", "2 usage", "3 not found", "130 interrupted",
                 "143 terminated"):
        assert code in codes, code


@pytest.mark.parametrize("path", [path for path, _ in every_command(parser())])
def test_every_command_has_a_description_an_example_and_help_for_each_option(
        capsys, path: str) -> None:
    command = dict(every_command(parser()))[path]
    for action in command._actions:
        assert action.help, (path, action.dest)
    shown = help_of(capsys, *path.split())
    assert command.description and command.description in shown
    assert f"example:\n  animl-ingest {path}" in shown


def test_defaults_are_shown(capsys, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert "(default: dev)" in help_of(capsys, "redrive")
    assert "(default: 12)" in help_of(capsys, "sample")
    assert "(default: 5000)" in help_of(capsys, "serve")


def test_a_served_local_endpoint_makes_local_the_default_stage(capsys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert "(default: local)" in help_of(capsys, "executions", "list")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://states.us-west-2.amazonaws.com")
    assert "(default: dev)" in help_of(capsys, "executions", "list")


def test_version_is_the_packages(capsys) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"animl-ingest {version('animl-ingest')}"


@pytest.mark.parametrize("argv", [["--debug", "executions", "list"],
                                  ["executions", "list", "--debug"],
                                  ["executions", "list", "--status", "failed", "--debug"]])
def test_debug_is_accepted_before_and_after_the_command(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    assert args.debug is True


def test_debug_given_before_is_kept_when_not_repeated_after() -> None:
    assert parser().parse_args(["--debug", "redrive", "batch-1"]).debug is True
    assert parser().parse_args(["redrive", "batch-1"]).debug is False


@pytest.mark.parametrize("given", ["failed", "Failed", "FAILED", "timed_out"])
def test_status_names_ignore_case(given: str) -> None:
    args = parser().parse_args(["executions", "list", "--status", given])
    assert args.status == given.upper()


def test_an_unknown_status_is_a_usage_error_listing_the_choices(capsys) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["executions", "list", "--status", "broken"])
    assert ended.value.code == 2
    assert "invalid choice: 'BROKEN'" in capsys.readouterr().err


@pytest.mark.slow  # the installed command, in a process of its own
def test_help_renders_in_a_terminal_80_columns_wide() -> None:
    """The installed `animl-ingest --help`, in a pseudo-terminal: every line fits."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    entry_point = Path(sys.executable).parent / "animl-ingest"
    done = subprocess.run([str(entry_point), "--help"], stdout=secondary, stderr=secondary,
                          env=env, timeout=60)
    os.close(secondary)
    shown = read_until_closed(primary)
    assert done.returncode == 0
    lines = shown.decode().splitlines()
    assert lines[0].startswith("usage: animl-ingest")
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert any(line.strip().startswith("reprocess") for line in lines)
