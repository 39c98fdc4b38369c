"""A group of entries worked as one Map item: concurrently, with the outcomes of one at a time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from animl_local.standin_api import StandinApi
from functions.batch import batch_steps
from functions.image.ingest_image import DEAD_LETTER, INGESTED, Services
from functions.platform import storage
from tests.conftest import create_batch, jpeg_bytes, zip_bytes


def ingest_as_one_group(services: Services, members: dict[str, bytes]) -> list[dict]:
    """Inspect the archive as InspectArchive does, then work its (one) group."""
    batch_id = create_batch(services.api, serial="CAM-1")
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=zip_bytes(members))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket, key)
    [item] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    batch_steps.ingest_group(services, batch_id, bucket, key, item["group"], item["entries"])
    return storage.get_json(services.s3, services.settings.batch_work_bucket,
                            storage.outcomes_key(batch_id, item["group"]))


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
