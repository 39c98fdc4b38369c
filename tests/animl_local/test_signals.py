"""Ctrl-C and SIGTERM on `run` and `serve`, as a user or a service manager sends them: the
command stops within 5 s with 130 / 143 and leaves no process, temp file or semaphore."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from animl_local.samples import write_sample_folder
from tests.leftovers import descendants, eventually

# Runs batches on the embedded engine: the full tier.
pytestmark = pytest.mark.slow

STOP_SECONDS = 5
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def start(args: list[str], temp: Path, log: Path) -> subprocess.Popen[bytes]:
    """The command in a session of its own (so Ctrl-C can go to its whole process group, as a
    terminal sends it), with a temp folder of its own and stderr in `log`."""
    temp.mkdir()
    with log.open("wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "animl_local.cli", *args],
                                env={**os.environ, "TMPDIR": str(temp)}, stdout=subprocess.PIPE,
                                stderr=stderr, start_new_session=True)


def send(proc: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)  # Ctrl-C: the terminal signals the foreground group
    else:
        proc.send_signal(signum)  # `kill`: the command alone


def stop_and_check(proc: subprocess.Popen[bytes], signum: signal.Signals, temp: Path,
                   log: Path) -> None:
    # The image workers, and the command's multiprocessing resource tracker: the tracker
    # outlives it, and on its own end warns of any semaphore left behind (and unlinks it).
    workers = set(descendants(proc.pid))
    helpers = set(descendants(proc.pid, helpers=True)) - workers
    sent = time.monotonic()
    send(proc, signum)
    try:
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
    stopped = time.monotonic() - sent
    errors = log.read_text()
    assert status == EXIT_STATUS[signum], errors
    assert stopped < STOP_SECONDS, (stopped, errors)
    # Its workers went with it (the leftovers fixture would also catch them, but later).
    assert workers, "no image worker processes to check"
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() and descendants().get(pid)
                               for pid in workers), seconds=3, what="the workers ending")
    assert helpers, "no resource tracker to check"
    eventually(lambda: not any(descendants(helpers=True).get(pid) for pid in helpers),
               seconds=30, what="the resource tracker ending")
    errors = log.read_text()  # with what the tracker may have said as it ended
    assert list(temp.iterdir()) == [], "temp files left behind"
    assert "leaked semaphore" not in errors and "Traceback" not in errors, errors
    assert errors.rstrip().splitlines()[-1] in ("animl-ingest: interrupted",
                                                "animl-ingest: terminated"), errors


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_run_stops_mid_ingestion_and_cleans_up(tmp_path: Path,
                                                 signum: signal.Signals) -> None:
    write_sample_folder(tmp_path / "cards", count=60)
    log = tmp_path / "stderr.log"
    proc = start(["run", str(tmp_path / "cards"), "--out", str(tmp_path / "out")],
                 tmp_path / "temp", log)
    # Mid-ingestion: images done, so the image workers run.
    eventually(lambda: re.search(r"ingesting [1-9]", log.read_text()), seconds=120, poll=0.1,
               what="images being ingested")
    stop_and_check(proc, signum, tmp_path / "temp", log)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_and_cleans_up(tmp_path: Path, signum: signal.Signals) -> None:
    log = tmp_path / "stderr.log"
    proc = start(["serve", "--port", "0"], tmp_path / "temp", log)
    assert proc.stdout is not None
    assert b"AWS_ENDPOINT_URL=" in proc.stdout.readline()
    stop_and_check(proc, signum, tmp_path / "temp", log)
