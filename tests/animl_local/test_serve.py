"""A served local stage: operator commands in other processes work on it as on AWS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from animl_local.samples import write_sample_folder
from tests.conftest import zip_bytes
from tests.leftovers import eventually

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow


@pytest.fixture
def served() -> Iterator[dict[str, str]]:
    """`animl-ingest serve` on a free port; yields the environment for other commands."""
    proc = subprocess.Popen([sys.executable, "-m", "animl_local.cli", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        endpoint = re.search(r"AWS_ENDPOINT_URL=(\S+)", line)
        assert endpoint, line + proc.stderr.read()
        yield {**os.environ, "AWS_ENDPOINT_URL": endpoint.group(1),
               "AWS_DEFAULT_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
    finally:
        proc.terminate()
        # SIGTERM unwinds the stage: its workers, servers and scratch folder go with it
        # (the autouse leftovers check), and the exit status says how it ended.
        assert proc.wait(timeout=30) == 143


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "animl_local.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_listed(env: dict[str, str], batch_id: str, status: str) -> None:
    eventually(lambda: batch_id in cli(env, "executions", "list", "--status", status,
                                       "--stage", "local"),
               seconds=90, poll=0.5, what=f"{batch_id} {status}")


def test_uploads_and_inspection_from_other_processes(served: dict[str, str],
                                                     tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=3)
    batch_id = cli(served, "upload", str(tmp_path / "cards"), "--stage", "local").strip()
    assert batch_id.startswith("batch-")
    wait_listed(served, batch_id, "SUCCEEDED")
    described = cli(served, "executions", "describe", batch_id, "--stage", "local")
    assert '"processingEnd": "' in described and '"total": 3' in described

    archive = tmp_path / "broken.zip"
    archive.write_bytes(zip_bytes({"a.jpg": b"x" * 500})[:60])
    bad = cli(served, "upload", str(archive), "--stage", "local").strip()
    wait_listed(served, bad, "FAILED")
    history = cli(served, "executions", "history", bad, "--stage", "local")
    assert "BatchFailed" in history
    assert "Bad archive" in cli(served, "executions", "describe", bad, "--stage", "local")
