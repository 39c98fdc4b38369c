"""A group records each entry's outcome as it finishes: a retried group redoes only the rest."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

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


def prepared_group(services: Services, members: dict[str, bytes], archive: bytes | None = None
                   ) -> tuple[str, dict]:
    """A batch whose archive holds `members` (or is `archive`), inspected as InspectArchive
    does: (id, its one group's Map item)."""
    batch_id = create_batch(services.api, serial="CAM-1")
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=archive or zip_bytes(members))
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


def fail_putting(s3: Any, key: str) -> None:
    """S3 refuses every PUT of `key` (SlowDown past botocore's retries), until unregistered."""
    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == key:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}},
                              "PutObject")

    s3.meta.events.register("before-parameter-build.s3.PutObject", refuse,
                            unique_id="refuse-entry-outcome")


def with_bad_crc(members: dict[str, bytes], payload: bytes) -> bytes:
    """A stored archive of `members` whose entry holding `payload` no longer matches its CRC."""
    return zip_bytes(members, zipfile.ZIP_STORED).replace(payload, payload[::-1], 1)


@pytest.mark.parametrize(("rejected", "recorded_before_failing"), [
    ("empty.jpg", True), ("empty.jpg", False),
    ("bad-crc.jpg", True),  # unreadable in the archive: recorded by the group, not the image
])
def test_a_retried_group_records_a_rejection_once(
        once: Services, standin_api: StandinApi, tmp_path: Path,
        rejected: str, recorded_before_failing: bool) -> None:
    payload = b"\xff\xd8 not a jpeg, and its bytes are about to change"
    members = {"IMG_0.JPG": jpeg_bytes(tmp_path, seed=70),
               rejected: payload if rejected == "bad-crc.jpg" else b""}
    archive = with_bad_crc(members, payload) if rejected == "bad-crc.jpg" else None
    batch_id, item = prepared_group(once, members, archive)
    index = [entry["path"] for entry in item["entries"]].index(rejected)
    outcome_key = storage.entry_outcome_key(batch_id, item["group"], index)
    if recorded_before_failing:  # createImageError done, then its outcome is not stored
        fail_putting(once.s3, outcome_key)
    else:  # createImageError not done
        standin_api.faults.append(Fault("createImageError", 503, body_contains=rejected))

    with pytest.raises(ClientError if recorded_before_failing else AnimlApiUnavailable):
        work(once, batch_id, item)

    def rejections() -> int:
        return [e["image"] for e in standin_api.store.image_errors(batch_id)].count(rejected)

    assert rejections() == (1 if recorded_before_failing else 0)
    assert calls_of(standin_api, "imageErrors") == 0  # a first attempt never looks
    once.s3.meta.events.unregister("before-parameter-build.s3.PutObject",
                                   unique_id="refuse-entry-outcome")
    standin_api.faults.clear()

    result = work(once, batch_id, item)

    assert result["resumed"] == 1 and result[DEAD_LETTER] == 1
    assert rejections() == 1
    assert calls_of(standin_api, "createImageError") == 1
    assert calls_of(standin_api, "imageErrors") == 1  # the retry looked once


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
