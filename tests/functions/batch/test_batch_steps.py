"""A group of entries worked as one Map item: concurrently, with the outcomes of one at a time."""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

from animl_local.standin_api import StandinApi
from functions.batch import batch_steps
from functions.image.ingest_image import DEAD_LETTER, INGESTED, Services
from functions.platform import storage
from tests.conftest import create_batch, jpeg_bytes


def ingest_as_one_group(services: Services, members: dict[str, bytes]) -> list[dict]:
    """A new batch of `members`, inspected and worked as one group."""
    batch_id = create_batch(services.api, serial="CAM-1")
    return ingest_members_as_one_group(services, batch_id, list(members.items()))


def test_entries_with_the_same_bytes_are_recorded_in_entry_order(services: Services,
                                                                 tmp_path: Path) -> None:
    same = jpeg_bytes(tmp_path, seed=7)
    members = {f"copy{i}/IMG.JPG": same for i in range(6)}
    members.update({f"other/IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=20 + i) for i in range(4)})

    rows = ingest_as_one_group(services, members)

    assert [r["path"] for r in rows] == list(members)  # outcomes in entry order
    outcomes = {r["path"]: (r["outcome"], r["reason"]) for r in rows}
    assert outcomes["copy0/IMG.JPG"] == (INGESTED, None)  # the first one, whatever the timing
    assert all(outcomes[f"copy{i}/IMG.JPG"] == (DEAD_LETTER, "DUPLICATE_IMAGE")
               for i in range(1, 6))
    assert all(outcomes[f"other/IMG_{i}.JPG"] == (INGESTED, None) for i in range(4))


def test_a_group_works_up_to_its_concurrency_of_entries_at_once(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    services = replace(services, settings=replace(services.settings, group_concurrency=3))
    standin_api.latency_seconds = 0.2  # every createImage waits: entries overlap their waits
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=40 + i) for i in range(8)}

    rows = ingest_as_one_group(services, members)

    assert [(r["path"], r["outcome"]) for r in rows] == [(p, INGESTED) for p in members]
    assert 2 <= standin_api.most_in_flight <= 3


def zip_with_repeats(members: list[tuple[str, bytes]]) -> bytes:
    """A zip whose entries may repeat a name (zipfile warns, and writes them all)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def ingest_members_as_one_group(services: Services, batch_id: str,
                                members: list[tuple[str, bytes]]) -> list[dict]:
    """Inspect the archive as InspectArchive does, then work its (one) group."""
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=zip_with_repeats(members))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket, key)
    [item] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    batch_steps.ingest_group(services, batch_id, bucket, key, item["group"], item["entries"])
    return storage.get_json(services.s3, services.settings.batch_work_bucket,
                            storage.outcomes_key(batch_id, item["group"]))


def dead_lettered_bytes(services: Services, rows: list[dict]) -> list[bytes]:
    """Each row's own dead-letter object, read back (one object per row, none shared)."""
    [keys] = [[k for row in rows for k in row["keys"]]]
    assert len(set(keys)) == len(keys) == len(rows)
    return [services.s3.get_object(Bucket=services.settings.dead_letter_bucket,
                                   Key=k)["Body"].read() for k in keys]


COLLIDING_NAMES = ["../x.jpg", "x.jpg", "/x.jpg", "C:\\x.jpg"]


def test_names_that_clean_to_one_path_keep_one_dead_letter_object_each(
        services: Services) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    members = [(name, f"not an image {i}".encode()) for i, name in enumerate(COLLIDING_NAMES)]

    rows = ingest_members_as_one_group(services, batch_id, members)

    assert {r["path"] for r in rows} == {"x.jpg"}
    assert [r["reason"] for r in rows] == ["NOT_AN_IMAGE"] * 4
    assert dead_lettered_bytes(services, rows) == [data for _, data in members]


def test_one_name_three_times_with_other_bytes_keeps_three_objects(services: Services) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    members = [("cam/IMG_0001.JPG", f"bad bytes {i}".encode()) for i in range(3)]

    rows = ingest_members_as_one_group(services, batch_id, members)

    assert dead_lettered_bytes(services, rows) == [data for _, data in members]


def test_images_the_api_throws_on_keep_one_object_each(services: Services,
                                                       tmp_path: Path) -> None:
    missing = "batch-00000000-0000-0000-0000-000000000000"  # createImage throws for it
    members = [(f"cam{i}/IMG_0001.JPG", jpeg_bytes(tmp_path, seed=60 + i)) for i in range(4)]

    rows = ingest_members_as_one_group(services, missing, members)

    assert all(r["id"] is None and r["outcome"] == DEAD_LETTER for r in rows)
    assert dead_lettered_bytes(services, rows) == [data for _, data in members]


def test_a_retried_group_finds_its_saved_images_and_records_no_image_error(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    batch_steps.mark_batch_status(services.api, services.s3, services.settings, batch_id,
                                  "uploadComplete", "2024-06-01T12:00:00Z", total=3)
    members = [(f"cam/IMG_{i}.JPG", jpeg_bytes(tmp_path, seed=90 + i)) for i in range(3)]
    first = ingest_members_as_one_group(services, batch_id, members)
    errors = len(standin_api.store.image_errors(batch_id))  # the queue-less inference, once each
    # The attempt ended after createImage but before its outcomes were stored: a retry.
    work = services.settings.batch_work_bucket
    services.s3.delete_object(Bucket=work, Key=storage.outcomes_key(batch_id, 0))
    [item] = storage.get_json(services.s3, work, storage.manifest_key(batch_id))
    batch_steps.ingest_group(services, batch_id, services.settings.ingestion_bucket,
                             f"{batch_id}.zip", 0, item["entries"])

    again = storage.get_json(services.s3, work, storage.outcomes_key(batch_id, 0))
    assert [(r["outcome"], r["id"]) for r in again] == [(INGESTED, r["id"]) for r in first]
    assert len(standin_api.store.image_errors(batch_id)) == errors  # no E11000 recorded
    assert len(standin_api.store.images(batch_id)) == 3


def test_one_name_twice_with_the_same_bytes_is_one_image_and_one_duplicate(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    same = jpeg_bytes(tmp_path, seed=95)
    members = [("cam/IMG_0001.JPG", same), ("cam/IMG_0001.JPG", same)]

    rows = ingest_members_as_one_group(services, batch_id, members)

    assert [(r["outcome"], r["reason"]) for r in rows] == [
        (INGESTED, None), (DEAD_LETTER, "DUPLICATE_IMAGE")]
    assert len(standin_api.store.images(batch_id)) == 1
    assert sum("E11000" in e["error"] for e in standin_api.store.image_errors(batch_id)) == 1
