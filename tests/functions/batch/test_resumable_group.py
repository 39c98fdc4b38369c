"""A group records each entry's outcome as it finishes: a retried group redoes only the rest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from animl_local.standin_api import Fault, StandinApi
from functions.batch import batch_steps
from functions.image.ingest_image import DEAD_LETTER, INGESTED, Services
from functions.platform import storage
from functions.platform.graphql_client import AnimlApiClient, AnimlApiUnavailable, RetryPolicy
from tests.conftest import API_KEY, create_batch, jpeg_bytes, zip_bytes

ONE_ATTEMPT = RetryPolicy(attempts=1, base_seconds=0, cap_seconds=0, margin_seconds=0)


def calls_of(standin_api: StandinApi, operation: str) -> int:
    return sum(f"{operation}(" in (body.get("query") or "") for body, _ in
               standin_api.received or [])


def prepared_group(services: Services, members: dict[str, bytes]) -> tuple[str, dict]:
    """A batch whose archive holds `members`, inspected as InspectArchive does: (id, its one
    group's Map item)."""
    batch_id = create_batch(services.api, serial="CAM-1")
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=zip_bytes(members))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket, key)
    [item] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    return batch_id, item


def work(services: Services, batch_id: str, item: dict) -> dict:
    return batch_steps.ingest_group(services, batch_id, services.settings.ingestion_bucket,
                                    f"{batch_id}.zip", item["group"], item["entries"])


@pytest.fixture
def once(services: Services, standin_api: StandinApi) -> Services:
    """Services whose API client tries each call once: the group's retry is what is tested."""
    return replace(services, api=AnimlApiClient(standin_api.url, API_KEY, retry=ONE_ATTEMPT))


def test_a_retried_group_redoes_only_the_entries_without_an_outcome(
        once: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=60 + i) for i in range(6)}
    members["empty.jpg"] = b""  # dead-lettered before the API: one ImageError, ever
    batch_id, item = prepared_group(once, members)
    standin_api.faults.append(Fault("createImage", 503, body_contains="IMG_3.JPG"))

    with pytest.raises(AnimlApiUnavailable):
        work(once, batch_id, item)

    work_bucket = once.settings.batch_work_bucket
    with pytest.raises(once.s3.exceptions.NoSuchKey):  # the group is not done
        once.s3.get_object(Bucket=work_bucket, Key=storage.outcomes_key(batch_id, item["group"]))
    assert len(standin_api.store.images(batch_id)) == 5  # every other entry went in
    saves_before = calls_of(standin_api, "createImage")

    standin_api.faults.clear()
    result = work(once, batch_id, item)

    assert result["resumed"] == 6 and result[INGESTED] == 6 and result[DEAD_LETTER] == 1
    assert calls_of(standin_api, "createImage") == saves_before + 1  # only IMG_3.JPG again
    rows = storage.get_json(once.s3, work_bucket, storage.outcomes_key(batch_id, item["group"]))
    assert [r["path"] for r in rows] == list(members)
    assert sorted(i["path"] for i in standin_api.store.images(batch_id)) == sorted(
        p for p in members if p != "empty.jpg")
    errors = standin_api.store.image_errors(batch_id)
    assert [e["image"] for e in errors].count("empty.jpg") == 1
    # The rest: each saved image's failed inference request (this batch has no queue), once.
    assert len(errors) == 1 + 6


def test_a_group_that_finished_is_not_worked_again(
        once: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=80 + i) for i in range(3)}
    batch_id, item = prepared_group(once, members)
    work(once, batch_id, item)
    requests_before = len(standin_api.received or [])

    again = work(once, batch_id, item)

    assert again["reused"] is True and again[INGESTED] == 3
    assert len(standin_api.received or []) == requests_before


def test_a_stored_outcome_of_another_entry_is_not_taken_for_this_one(
        once: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=90 + i) for i in range(2)}
    batch_id, item = prepared_group(once, members)
    stray = {"path": "elsewhere.jpg", "outcome": INGESTED, "reason": None}
    storage.put_json(once.s3, once.settings.batch_work_bucket,
                     storage.entry_outcome_key(batch_id, item["group"], 0), stray)

    result = work(once, batch_id, item)

    assert result["resumed"] == 0 and result[INGESTED] == 2
    assert len(standin_api.store.images(batch_id)) == 2
