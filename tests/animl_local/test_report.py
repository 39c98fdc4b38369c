"""A local run's copies of a batch's objects: every key gets a path the file system can hold."""

from __future__ import annotations

from pathlib import Path

from animl_local.moto_s3_copies import copy_object
from animl_local.report import NAME_MAX, mirror_objects, mirror_path
from functions.image.ingest_image import DEAD_LETTER
from functions.platform import storage
from functions.platform.settings import Settings


def test_a_key_with_segments_over_name_max_is_mirrored_shortened(
        s3, settings: Settings, tmp_path: Path) -> None:
    long_segment = "é" * 150  # 300 bytes: one more than most file systems hold in a name
    keys = [storage.rejected_key("NOT_AN_IMAGE", "batch-1/30", f"{long_segment}/x{i}.jpg")
            for i in range(2)] + ["NOT_AN_IMAGE/batch-1/31/" + "a" * 400]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=settings.dead_letter_bucket, Key=key, Body=f"bytes {i}".encode())
    rows = [{"outcome": DEAD_LETTER, "keys": [key]} for key in keys]

    assert mirror_objects(copy_object, settings, rows, tmp_path) == 3

    copies = [mirror_path(tmp_path / "dead-letter", key) for key in keys]
    assert [c.read_bytes() for c in copies] == [f"bytes {i}".encode() for i in range(3)]
    assert all(len(part.encode()) <= NAME_MAX for c in copies for part in c.parts)
    assert copies[0].name == "x0.jpg" and copies[0].parent == copies[1].parent


def test_dot_segments_stay_inside_the_folder(tmp_path: Path) -> None:
    path = mirror_path(tmp_path, "../../x/./y.jpg")
    assert path == tmp_path / "x" / "y.jpg"
