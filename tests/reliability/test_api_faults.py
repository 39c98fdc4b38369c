"""Whole batches on the embedded engine while the API fails at random (mixed kinds): every
entry is ingested exactly once or dead-lettered exactly once under a reason, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from animl_local import operations
from animl_local.accounting import account_for_batch
from animl_local.cli import main
from animl_local.engine import EmbeddedStage
from animl_local.standin_api import StandinApi
from animl_local.standin_api.server import RandomFaults
from functions.platform.graphql_client import AnimlApiClient
from tests.conftest import API_KEY, TEST_SETTINGS, create_batch, jpeg_bytes, zip_bytes

# Runs whole batches on the embedded engine: the full tier.
pytestmark = pytest.mark.slow

# A timeout long enough that only injected faults time out on this (slow, shared) machine.
SETTINGS = replace(TEST_SETTINGS, api_timeout_seconds=8)
GOOD = 60  # two groups of the test stage (50 entries each at most)
MAX_REDRIVES = 3


def members(tmp_path: Path) -> dict[str, bytes]:
    found = {f"cam{i % 3}/IMG_{i:03d}.JPG": jpeg_bytes(tmp_path, seed=i, size=(320, 240))
             for i in range(GOOD)}
    found["bad/empty.jpg"] = b""  # refused before the API: dead-lettered, one ImageError
    found["bad/not-a-photo.jpg"] = b"field notes, not a photo" * 10
    return found


@pytest.fixture
def stage(standin_api: StandinApi) -> Iterator[EmbeddedStage]:
    with EmbeddedStage(SETTINGS, standin_api.url, API_KEY) as st:
        yield st


def upload(stage: EmbeddedStage, tmp_path: Path, batch_id: str, data: bytes) -> dict:
    archive = tmp_path / f"{batch_id}.zip"
    archive.write_bytes(data)
    stage.upload_archive(batch_id, str(archive))
    return stage.wait_for_execution(batch_id, poll_seconds=0.1, timeout_seconds=600)


def run_until_done(stage: EmbeddedStage, batch_id: str, first: dict) -> int:
    """Re-drive a failed batch until it succeeds; the number of re-drives it took."""
    result, redrives = first, 0
    while result["status"] != "SUCCEEDED" and redrives < MAX_REDRIVES:
        redrives += 1
        assert main(["redrive", batch_id, "--stage", TEST_SETTINGS.stage]) == 0
        latest = operations.batch_executions(stage.client("stepfunctions"),
                                             stage.state_machine_arn, batch_id)[-1]
        result = stage.wait_for_execution(batch_id, execution_name=latest["name"],
                                          timeout_seconds=600)
    assert result["status"] == "SUCCEEDED", result
    return redrives


@pytest.mark.parametrize(("rate", "seed"), [(0.05, 11), (0.20, 12)])
def test_api_faults_lose_and_duplicate_nothing(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path, rate: float, seed: int) -> None:
    batch_id = create_batch(api_client, serial="CAM-1")
    archive = members(tmp_path)
    faults = RandomFaults(rate=rate, seed=seed,
                          hold_seconds=SETTINGS.api_timeout_seconds + 1.0)
    standin_api.random_faults = faults

    first = upload(stage, tmp_path, batch_id, zip_bytes(archive))
    if rate <= 0.05:
        assert first["status"] == "SUCCEEDED", first
    redrives = run_until_done(stage, batch_id, first)
    standin_api.random_faults = None

    assert faults.count() >= rate * GOOD / 2  # faults were injected, of several kinds
    assert len({kind for _, kind in faults.injected}) >= 3
    accounting = account_for_batch(stage.client("s3"), stage.settings, standin_api.store,
                                   batch_id, list(archive))
    # exact: no E11000 ImageError on an ingested image, although saves had their answers
    # lost, and exactly one ImageError for each refused entry, whose createImageError may have
    # had its answer lost too (the client looks for the error before it sends it again).
    assert accounting.exact, accounting.to_dict()
    assert (accounting.ingested, accounting.dead_lettered) == (GOOD, 2)
    print(f"rate {rate}: faults {dict(faults.injected)}, re-drives {redrives}, "
          f"{accounting.to_dict()}")
