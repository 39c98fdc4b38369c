"""createImage or createImageError done by the service but its answer lost: the client's retry
converges, and for a batch image it leaves no ImageError (the image is looked up instead of sent
again), for a refused entry exactly one (the batch's ImageErrors are read before a resend)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from animl_local.standin_api import StandinApi
from animl_local.standin_api.server import RandomFaults
from functions.image.ingest_image import (
    DEAD_LETTER,
    INGESTED,
    ImageSource,
    Services,
    ingest_image,
)
from functions.platform import reasons
from functions.platform.graphql_client import AnimlApiClient, RetryPolicy
from tests.conftest import API_KEY, create_batch, jpeg_bytes

# A lost answer by a timeout waits out the client's timeout: the full tier's.
KINDS = [pytest.param("commit-then-timeout", marks=pytest.mark.slow), "commit-then-503"]
FAST = RetryPolicy(attempts=4, base_seconds=0.01, cap_seconds=0.05, margin_seconds=0)


def ingested_with_one_lost_answer(services: Services, standin_api: StandinApi, tmp_path: Path,
                                  kind: str, knows_project: bool) -> list[str]:
    """One batch image whose createImage is done but its answer lost (`kind`), the batch's
    project known to ingest or not: checks it is ingested once, returns the batch's
    ImageErrors."""
    # A timeout that only the injected hold passes on a loaded machine: a request that times
    # out on its own may still be saving when the image is looked up (then it is sent again).
    client = AnimlApiClient(standin_api.url, API_KEY, timeout=3.0, retry=FAST)
    services = replace(services, api=client)
    batch_id = create_batch(client, serial="CAM-1")
    # As ingest's batch record has it (updateBatch answers it).
    project = client.update_batch(batch_id)["projectId"] if knows_project else None
    standin_api.random_faults = RandomFaults(rate=1.0, kinds=(kind,), operations=("createImage",),
                                             hold_seconds=3.5, limit=1)
    data = jpeg_bytes(tmp_path, seed=5)
    source = ImageSource(file_name="IMG_5.JPG", bucket=services.settings.ingestion_bucket,
                         key=f"{batch_id}.zip", batch_id=batch_id, path="cam/IMG_5.JPG",
                         project_id=project)

    outcome = ingest_image(data, source, services)

    assert standin_api.random_faults.injected == {("createImage", kind): 1}
    assert outcome.outcome == INGESTED and outcome.reason is None
    [image] = standin_api.store.images(batch_id)
    assert image["_id"] == outcome.id and image["path"] == "cam/IMG_5.JPG"
    serving = services.s3.list_objects_v2(Bucket=services.settings.serving_bucket)["Contents"]
    assert len(serving) == 3
    return [e["error"] for e in standin_api.store.image_errors(batch_id)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_image_whose_answer_was_lost_is_ingested_once_without_an_image_error(
        services: Services, standin_api: StandinApi, tmp_path: Path, kind: str) -> None:
    errors = ingested_with_one_lost_answer(services, standin_api, tmp_path, kind, True)
    # createImage was not sent twice: no E11000 (the one ImageError is the failed inference
    # request of this queue-less batch, recorded with the save).
    assert len(errors) == 1 and not any("E11000" in e for e in errors), errors


@pytest.mark.parametrize("kind", KINDS)
def test_without_the_project_a_lost_answer_is_retried_and_recognised_as_ours(
        services: Services, standin_api: StandinApi, tmp_path: Path, kind: str) -> None:
    """No project to look in (ingest's record lacks it): createImage is sent again, as before."""
    errors = ingested_with_one_lost_answer(services, standin_api, tmp_path, kind, False)
    # The service itself records the retry's E11000 as an ImageError (as the real one does).
    assert sum("E11000" in e for e in errors) == 1


# A refused entry (here an empty file) is recorded with createImageError, whose answer is lost
# after the service saved it (commit-then-*), or before (503: nothing saved, so it is sent
# again). Either way the batch ends with exactly one ImageError for it.

def image_errors_of_a_refused_entry(services: Services, standin_api: StandinApi,
                                    faults: RandomFaults) -> list[str]:
    """An empty batch file ingested while `faults` are injected: checks it is dead-lettered
    and that the batch's ImageErrors were read; returns its ImageErrors' reasons."""
    # As above: only the injected hold (3.5 s) passes the 3 s timeout.
    client = AnimlApiClient(standin_api.url, API_KEY, timeout=3.0, retry=FAST)
    services = replace(services, api=client)
    batch_id = create_batch(client, serial="CAM-1")
    # Other errors of the batch, more than a page of the lookup's: the one looked for is found
    # among them, or (not saved) looked for through all of them.
    for number in range(350):
        standin_api.store.create_image_error(f"cam/OTHER_{number}.JPG", batch_id, "other")
    standin_api.random_faults = faults
    source = ImageSource(file_name="IMG_0.JPG", bucket=services.settings.ingestion_bucket,
                         key=f"{batch_id}.zip", batch_id=batch_id, path="cam/IMG_0.JPG")

    outcome = ingest_image(b"", source, services)

    assert (outcome.outcome, outcome.reason) == (DEAD_LETTER, reasons.EMPTY_FILE)
    sent = [body["query"] for body, _ in standin_api.received or []]
    # The lookup was made (the answer may have followed the save, as far as the client knew).
    assert any("imageErrors(" in query for query in sent)
    return [e["error"].split(":")[0] for e in standin_api.store.image_errors(batch_id)
            if e["image"] == "cam/IMG_0.JPG"]


@pytest.mark.parametrize("kind", [*KINDS, "503"])
def test_a_refused_entry_whose_image_error_answer_was_lost_has_exactly_one_image_error(
        services: Services, standin_api: StandinApi, kind: str) -> None:
    faults = RandomFaults(rate=1.0, kinds=(kind,), operations=("createImageError",),
                          hold_seconds=3.5, limit=1)
    errors = image_errors_of_a_refused_entry(services, standin_api, faults)
    assert faults.injected == {("createImageError", kind): 1}
    assert errors == [reasons.EMPTY_FILE]


def test_a_lookup_whose_own_answer_is_lost_is_asked_again(services: Services,
                                                          standin_api: StandinApi) -> None:
    faults = RandomFaults(rate=1.0, kinds=("commit-then-503",),
                          operations=("createImageError", "imageErrors"), limit=2)
    errors = image_errors_of_a_refused_entry(services, standin_api, faults)
    assert faults.injected == {("createImageError", "commit-then-503"): 1,
                               ("imageErrors", "commit-then-503"): 1}
    assert errors == [reasons.EMPTY_FILE]
