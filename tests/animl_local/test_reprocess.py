"""`reprocess` works from the batch report's rows: each row's own object, origin and path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from animl_local import operations
from animl_local.standin_api import StandinApi
from functions.batch import batch_steps
from functions.image.ingest_image import DEAD_LETTER, INGESTED, Services
from functions.platform import storage
from tests.conftest import jpeg_bytes
from tests.functions.batch.test_batch_steps import ingest_members_as_one_group

MISSING = "batch-00000000-0000-0000-0000-0000000000aa"


def batch_appears(standin_api: StandinApi, batch_id: str) -> None:
    """The batch record the API did not have at ingest time (createImage threw) is there now."""
    made = standin_api.store.create_batch("x.zip")
    doc = {**made, "_id": batch_id, "overrideSerial": "CAM-1"}
    standin_api.store._db.execute("UPDATE batches SET _id = ?, doc = ? WHERE _id = ?",
                                  (batch_id, json.dumps(doc), made["_id"]))


def test_reprocess_ingests_each_thrown_image_from_its_own_object(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    members = [(f"cam{i}/IMG_0001.JPG", jpeg_bytes(tmp_path, seed=70 + i)) for i in range(4)]
    rows = ingest_members_as_one_group(services, MISSING, members)
    assert [r["outcome"] for r in rows] == [DEAD_LETTER] * 4
    batch_steps.summarize_batch(services.s3, services.api, services.settings, MISSING)
    batch_appears(standin_api, MISSING)

    counts = operations.reprocess(services, MISSING)

    assert counts == {"reprocessed": 4, "ingested": 4, "stillDeadLettered": 0, "unavailable": 0}
    images = {i["path"]: i for i in standin_api.store.images(MISSING)}
    assert sorted(images) == [path for path, _ in members]
    for path, data in members:  # each path got its own bytes
        assert images[path]["_id"].endswith(hashlib.md5(data).hexdigest())
    listed = services.s3.list_objects_v2(Bucket=services.settings.dead_letter_bucket)
    assert listed.get("Contents") is None
    report = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.report_key(MISSING))
    assert [r["outcome"] for r in report["images"]] == [INGESTED] * 4


def test_a_row_whose_object_is_gone_or_other_bytes_is_left_alone(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    members = [(f"cam{i}/IMG_0001.JPG", jpeg_bytes(tmp_path, seed=80 + i)) for i in range(2)]
    rows = ingest_members_as_one_group(services, MISSING, members)
    batch_steps.summarize_batch(services.s3, services.api, services.settings, MISSING)
    batch_appears(standin_api, MISSING)
    bucket = services.settings.dead_letter_bucket
    services.s3.delete_object(Bucket=bucket, Key=rows[0]["keys"][0])
    services.s3.put_object(Bucket=bucket, Key=rows[1]["keys"][0], Body=members[0][1])

    counts = operations.reprocess(services, MISSING)

    assert counts["unavailable"] == 2 and counts["reprocessed"] == 0
    assert standin_api.store.images(MISSING) == []
