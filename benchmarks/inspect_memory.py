"""Peak memory of InspectArchive and of one worker's group read, for huge archives.

Builds (once, in --workdir) a stored archive of 100,000 small images and one of over 5 GB, then
measures each step in a fresh subprocess: peak RSS (ru_maxrss) minus the RSS after imports. S3
is served from the local files by a small adapter (HeadObject, ranged GetObject, PutObject), so
the figures are the step's own memory, not an S3 server's. Prints one JSON line per measurement.

    python benchmarks/inspect_memory.py --workdir /tmp/animl-bench
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LARGE_ENTRY_BYTES = 48 * 1024 * 1024
LARGE_ENTRIES = 110  # 110 x 48 MiB = 5.2 GiB


class LocalFileS3:
    """Just enough of the S3 client for these steps, over files in one folder per bucket."""

    class exceptions:  # mirrors boto3's client.exceptions
        class NoSuchKey(Exception):
            pass

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"ContentLength": self._path(Bucket, Key).stat().st_size}

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        if not path.exists():
            raise self.exceptions.NoSuchKey(Key)
        with open(path, "rb") as f:
            if Range:
                start, end = (int(v) for v in Range.removeprefix("bytes=").split("-"))
                f.seek(start)
                data = f.read(end - start + 1)
            else:
                data = f.read()
        return {"Body": io.BytesIO(data)}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Body)
        return {}


def build_many_small(path: Path, count: int = 100_000) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i in range(count):
            zf.writestr(f"cards/CAM{i % 100:02d}/IMG_{i:06d}.JPG", b"\xff\xd8\xff" + bytes(97))


def build_huge(path: Path) -> None:
    chunk = bytes(8 * 1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i in range(LARGE_ENTRIES):
            info = zipfile.ZipInfo(f"cards/IMG_{i:04d}.JPG")
            with zf.open(info, "w", force_zip64=True) as entry:
                for _ in range(LARGE_ENTRY_BYTES // len(chunk)):
                    entry.write(chunk)


def measure(step: str, root: Path, archive: str) -> dict[str, Any]:
    """Run one step in a fresh interpreter and return what it printed."""
    done = subprocess.run([sys.executable, __file__, "--child", step, str(root), archive],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def child(step: str, root: Path, archive: str) -> None:
    from functions.archive.zip_reader import S3RangeReader, ZipEntry, prefetch_group, read_entry
    from functions.batch.batch_steps import inspect_batch_archive
    from functions.platform.settings import Settings
    from functions.platform.storage import get_json, manifest_key

    settings = Settings(stage="bench")
    s3 = LocalFileS3(root)
    batch = archive.removesuffix(".zip")
    if step == "inspect":
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = inspect_batch_archive(s3, settings, batch, "archives", archive)
        detail = {"images": result["total"], "groups": result["groups"]}
    else:
        # The Map hands a worker its item; reading the whole manifest here is not the worker's.
        item = get_json(s3, settings.batch_work_bucket, manifest_key(batch))[0]
        entries = [ZipEntry.from_item(e) for e in item["entries"]]
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reader = S3RangeReader(s3, "archives", archive)
        span = prefetch_group(reader, entries, 2 * settings.group_max_bytes)
        read = sum(len(read_entry(span, e, settings.max_image_bytes)) for e in entries)
        detail = {"entries": len(entries), "bytes_read": read}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"baseline_mb": round(baseline / 1024, 1), "peak_mb": round(peak / 1024, 1),
                      "step_mb": round((peak - baseline) / 1024, 1), **detail}))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    archives = args.workdir / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    builders: dict[str, Callable[[Path], None]] = {"many-small.zip": build_many_small,
                                                   "huge.zip": build_huge}
    for name, build in builders.items():
        if not (archives / name).exists():
            build(archives / name)
    for name in builders:
        size = (archives / name).stat().st_size
        for step in ("inspect", "worker-group"):
            result = measure(step, args.workdir, name)
            print(json.dumps({"benchmark": "inspect_memory", "archive": name,
                              "archive_gb": round(size / 1024**3, 2), "step": step, **result}))


if __name__ == "__main__":
    main()
