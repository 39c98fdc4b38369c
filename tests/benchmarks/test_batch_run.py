"""batch_run on a tiny batch: the run succeeds, and the CPU it reports adds up to its ceiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # a whole local run in a fresh interpreter


def test_the_benchmark_reports_the_run_and_the_cpu_it_took() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/batch_run.py", "--images", "4", "--width", "320",
         "--height", "240"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["status"] == "SUCCEEDED" and printed["outcomes"] == {"ingested": 4}
    stage, workers = printed["stage_process_cpu_seconds"], printed["image_workers_cpu_seconds"]
    assert stage > 0 and workers > 0  # the image workers' CPU is counted once they have ended
    ceiling = 4 * (os.cpu_count() or 1) / (stage + workers)
    assert printed["cpu_ceiling_images_per_second"] == pytest.approx(ceiling, rel=0.1, abs=0.1)
