"""group_latency on a tiny group: it still runs against the embedded stage, and the function it
times reads the API's URL and key once per container however many groups it works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # an embedded stage in a fresh interpreter


def test_the_benchmark_times_groups_with_and_without_latency() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/group_latency.py", "--images", "3", "--repeat", "3",
         "--s3-ms", "5", "--api-ms", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["benchmark"] == "group_latency" and printed["images"] == 3
    assert len(printed["ms_per_image_runs"]) == len(printed["compute_ms_per_image_runs"]) == 3
    assert printed["ms_per_image"] == sorted(printed["ms_per_image_runs"])[1]  # the median
    # Six invocations of one container: one read each of the URL and the key.
    assert (printed["ssm_reads"], printed["secrets_reads"]) == (1, 1)
