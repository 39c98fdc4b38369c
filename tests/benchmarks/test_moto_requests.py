"""moto_requests on a few requests: both ways of reaching the stage's moto are timed, and the
served client runs in a process of its own that is gone when the benchmark ends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # two embedded stages and client processes


def test_the_benchmark_times_puts_in_process_and_served() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/moto_requests.py", "--puts", "3", "--repeat", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["benchmark"] == "moto_requests" and printed["puts"] == 3
    for figure in ("in_process_cpu_ms", "served_server_cpu_ms", "served_client_cpu_ms"):
        assert set(printed[figure]) == {"photo", "rendition"}
        assert all(ms > 0 for ms in printed[figure].values()), printed
