"""`animl-ingest run`'s progress on stderr: the phases, n/N with rate and ETA, in place on a
terminal, plain lines in a pipe, nothing with --quiet."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from animl_local import progress
from animl_local.progress import Progress
from animl_local.samples import write_sample_folder
from tests.leftovers import eventually
from tests.terminal import read_until_closed

RUN_PHASES = (progress.ZIPPING, progress.STARTING, progress.UPLOADING, progress.INSPECTING,
              progress.INGESTING, progress.READING_OUTCOMES, progress.COPYING,
              progress.WRITING_REPORT, progress.STOPPING,
              progress.CLEANING_UP)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_say_each_phase_once_and_every_tenth_of_the_images() -> None:
    stream, clock = io.StringIO(), Clock()
    shown = Progress(stream, terminal=False, clock=clock)
    shown.phase(progress.UPLOADING)
    shown.phase(progress.UPLOADING)
    shown.images(0, None)
    for done in range(0, 201, 5):  # polled more often than a tenth changes
        clock.now += 1
        shown.images(done, 200)
    shown.phase(progress.WRITING_REPORT)
    shown.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines[:3]] == [
        progress.UPLOADING, progress.INSPECTING, "ingesting 0/200 images"]
    counted = [line for line in lines if "images," in line]
    assert [re.search(r"(\d+)/200", line).group(1) for line in counted] == [
        str(n) for n in range(20, 201, 20)][:-1]
    # 5 images a second: rate and the time left.
    assert "20/200 images, 5.0/s, ETA 36 s" in counted[0]
    assert lines[-2].endswith("awaiting inference (200/200 images done)")
    assert lines[-1].endswith(progress.WRITING_REPORT)
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_on_a_terminal_the_line_is_redrawn_every_half_second_even_without_news() -> None:
    assert progress.REDRAW_SECONDS <= 1  # the issue asks for at least once a second
    stream = io.StringIO()
    with Progress(stream, terminal=True) as shown:
        shown.phase(progress.STARTING)
        # No news after the phase: only the ticker redraws (waited for, not timed: a loaded
        # machine may delay a tick).
        eventually(lambda: stream.getvalue().count(f"] {progress.STARTING}") >= 3,
                   seconds=60, poll=0.05, what="two redraws by the ticker")
    text = stream.getvalue()
    # The phase, then at least two redraws by the ticker, then the line closed.
    assert text.endswith("\n") and text.count("\r\x1b[K") >= 3 and "\n" not in text[:-1]
    # Each redraw shows the time elapsed then: the line moves while the phase has no news.
    elapsed = re.findall(r"\[ *(\d+\.\d) s\] " + progress.STARTING, text)
    assert len(set(elapsed)) >= 2, elapsed


def run_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "animl_local.cli", "run", *args]


@pytest.mark.slow
def test_a_piped_run_prints_one_plain_line_per_phase(tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=10)
    done = subprocess.run(run_command(str(tmp_path / "cards"), "--out", str(tmp_path / "out")),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    phases = [line.split("] ", 1)[1] for line in lines]
    firsts = [next(i for i, p in enumerate(phases) if p.startswith(name)) for name in RUN_PHASES]
    assert firsts == sorted(firsts), lines
    assert any(re.search(r"ingesting \d+/10 images", p) for p in phases), lines
    assert all(re.match(r"\[ *\d+\.\d s\] ", line) for line in lines), lines
    assert "SUCCEEDED" in done.stdout


@pytest.mark.slow
def test_quiet_prints_no_progress(tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=2)
    done = subprocess.run(run_command(str(tmp_path / "cards"), "--out", str(tmp_path / "out"),
                                      "--quiet"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def read_terminal(command: list[str]) -> tuple[int, str]:
    """Runs `command` with stderr on a pseudo-terminal, read while it runs (a terminal holds
    only a few KB unread); its exit status and what the terminal showed."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(command, stderr=secondary, stdout=subprocess.DEVNULL)
    os.close(secondary)
    shown = read_until_closed(primary)
    return proc.wait(timeout=30), shown.decode(errors="replace")


@pytest.mark.slow
def test_a_run_on_a_terminal_shows_every_phase_in_place(tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=3)
    status, shown = read_terminal(run_command(str(tmp_path / "cards"), "--out",
                                              str(tmp_path / "out")))
    assert status == 0, shown
    for name in RUN_PHASES:
        assert f"] {name}" in shown, (name, shown)
    assert re.search(r"ingesting \d/3 images", shown), shown
    # Rewritten in place: one line, ended once.
    assert shown.count("\r\x1b[K") > len(RUN_PHASES) and shown.rstrip("\r\n").count("\n") == 0
