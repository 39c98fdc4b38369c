"""createImage done by the service but its answer lost: the client's retry converges."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from animl_local.standin_api import StandinApi
from animl_local.standin_api.server import RandomFaults
from functions.image.ingest_image import INGESTED, ImageSource, Services, ingest_image
from functions.platform.graphql_client import AnimlApiClient, RetryPolicy
from tests.conftest import API_KEY, create_batch, jpeg_bytes

FAST = RetryPolicy(attempts=4, base_seconds=0.01, cap_seconds=0.05, margin_seconds=0)


@pytest.mark.parametrize("kind", ["commit-then-timeout", "commit-then-503"])
def test_a_saved_image_whose_answer_was_lost_is_ingested_once(
        services: Services, standin_api: StandinApi, tmp_path: Path, kind: str) -> None:
    client = AnimlApiClient(standin_api.url, API_KEY, timeout=1.0, retry=FAST)
    services = replace(services, api=client)
    batch_id = create_batch(client, serial="CAM-1")
    standin_api.random_faults = RandomFaults(rate=1.0, kinds=(kind,), operations=("createImage",),
                                             hold_seconds=1.5, limit=1)
    data = jpeg_bytes(tmp_path, seed=5)
    source = ImageSource(file_name="IMG_5.JPG", bucket=services.settings.ingestion_bucket,
                         key=f"{batch_id}.zip", batch_id=batch_id, path="cam/IMG_5.JPG")

    outcome = ingest_image(data, source, services)

    assert standin_api.random_faults.injected == {("createImage", kind): 1}
    assert outcome.outcome == INGESTED and outcome.reason is None
    [image] = standin_api.store.images(batch_id)
    assert image["_id"] == outcome.id and image["path"] == "cam/IMG_5.JPG"
    serving = services.s3.list_objects_v2(Bucket=services.settings.serving_bucket)["Contents"]
    assert len(serving) == 3
    # The service itself records the retry's E11000 as an ImageError (as the real one does):
    # the one trace a lost answer leaves, which ingest cannot prevent.
    errors = [e["error"] for e in standin_api.store.image_errors(batch_id)]
    assert sum("E11000" in e for e in errors) == 1
