"""Long names through the whole batch on the embedded engine, which refuses what AWS refuses
(S3 keys over 1,024 bytes, state payloads over 256 KiB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from animl_local.engine import EmbeddedStage
from animl_local.report import batch_images
from functions.platform.graphql_client import AnimlApiClient
from tests.conftest import create_batch, jpeg_bytes, zip_bytes
from tests.statemachine.test_ingest_batch_on_engine import upload

pytestmark = pytest.mark.slow


def test_a_batch_of_long_paths_is_ingested_whole(stage: EmbeddedStage, api_client: AnimlApiClient,
                                                  tmp_path: Path) -> None:
    folder = "/".join(["d" * 200] * 15)  # about 3 KB: 50 entries made a 282 KiB Map item
    members = {f"{folder}/IMG_{i:03d}.JPG": jpeg_bytes(tmp_path, seed=i, size=(320, 240))
               for i in range(60)}
    members["x" * 960 + "/notes.jpg"] = b"not an image"  # its dead-letter key: over 1,024 bytes
    batch_id = create_batch(api_client, serial="CAM-1")

    execution = upload(stage, tmp_path, batch_id, zip_bytes(members))

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    rows, complete = batch_images(stage.client("s3"), stage.settings, batch_id)
    assert complete and sorted(r["path"] for r in rows) == sorted(members)  # full names kept
    assert all(len(key.encode()) <= 1024 for r in rows for key in r["keys"])
    [bad] = [r for r in rows if r["path"].endswith("notes.jpg")]
    assert bad["outcome"] == "dead-letter" and bad["keys"][0].endswith("/notes.jpg")
