"""Peak memory of one IngestImageGroup worker for the inputs that used to need gigabytes.

Three archives, built in a temporary folder and deleted afterwards (about 1.6 GB, 80 MB and 11 MB):
- `lying-entry`: one stored `.jpg` entry of 1.5 GiB whose central directory claims 1,000 bytes;
- `fifty-inflating`: 50 `.jpg` entries that each inflate to 99 MB (deflated about 60:1, under
  the bomb ratio), all in one Map item. They are not photos: each is read whole, refused and
  kept in dead-letter, which is the most a worker ever holds of an entry.
- `big-pngs`: 8 PNGs of 100 megapixels (10,000 x 10,000, one colour each: about 1.4 MB
  apiece). A PNG decodes whole, 400 MB each; the group's threads decode them within the
  worker's decode budget (`decode_budget_bytes`), as the handler gives it.

Each case runs the real `ingest_group` (InspectArchive first, for the manifest) in a fresh
interpreter against the stand-in API; S3 is a small adapter over local files (HeadObject and
ranged GetObject with If-Match, server-side part copies; objects written by the worker are
counted, not kept), so the figures are the worker's own. Prints one JSON line per case:
`peak_rss_mb` (ru_maxrss of the worker process, everything included), `step_rss_mb` (that peak
minus the RSS after imports and setup) and `tracemalloc_peak_mb` (Python allocations during the
group), against `function_memory_mb`, the function's memory in .chalice/config.json.

    python benchmarks/worker_memory.py
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import inspect_memory  # noqa: E402  (beside this script: its files-as-S3 adapter)

LIE_BYTES = 1536 * 1024 * 1024
CLAIMED_BYTES = 1000
INFLATED_BYTES = 99 * 1000 * 1000
ENTRIES = 50
BIG_PNGS = 8
BIG_PNG_SIDE = 10_000
CHUNK = 8 * 1024 * 1024
BUCKET = "archives"


class LocalFileS3(inspect_memory.LocalFileS3):
    """inspect_memory's files-as-S3, with If-Match (ETags from size and mtime), server-side part
    copies, and writes counted rather than kept (5 GB of dead letters would fill the disk)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written = 0

    def _etag(self, path: Path) -> str:
        stat = path.stat()
        return f'"{stat.st_size:x}{stat.st_mtime_ns:x}"'

    def _check(self, path: Path, if_match: str | None) -> None:
        from botocore.exceptions import ClientError
        if if_match and if_match != self._etag(path):
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "GetObject")

    def head_object(self, Bucket: str, Key: str, IfMatch: str | None = None) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        self._check(path, IfMatch)
        return {**super().head_object(Bucket, Key), "ETag": self._etag(path)}

    def get_object(self, Bucket: str, Key: str, Range: str | None = None,
                   IfMatch: str | None = None) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        if path.exists():
            self._check(path, IfMatch)
        return super().get_object(Bucket, Key, Range)

    def put_object(self, Bucket: str, Key: str, Body: Any, **_: Any) -> dict[str, Any]:
        if Bucket == BUCKET or Key.endswith(".json"):  # the manifest and outcomes: kept
            path = self._path(Bucket, Key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(Body)
        self.written += len(Body)  # images and dead letters: counted only
        return {"ETag": '"0"'}

    def get_paginator(self, operation: str) -> Any:
        """ListObjectsV2 in one page (a group looks for the outcomes its earlier attempt kept)."""
        assert operation == "list_objects_v2", operation
        s3 = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str = "") -> list[dict[str, Any]]:
                folder = s3.root / Bucket
                keys = sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                              if path.is_file()) if folder.exists() else []
                return [{"Contents": [{"Key": key} for key in keys if key.startswith(Prefix)]}]

        return Paginator()

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "u"}

    def upload_part_copy(self, CopySource: dict[str, str], CopySourceRange: str,
                         CopySourceIfMatch: str | None = None, **_: Any) -> dict[str, Any]:
        self._check(self._path(CopySource["Bucket"], CopySource["Key"]), CopySourceIfMatch)
        start, end = (int(v) for v in CopySourceRange.removeprefix("bytes=").split("-"))
        self.written += end - start + 1  # server-side: no byte passes through the worker
        return {"CopyPartResult": {"ETag": '"0"'}}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


def _local_header(name: bytes, crc: int, compressed: int, size: int, method: int) -> bytes:
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, compressed,
                       size, len(name), 0) + name


def _central(name: bytes, crc: int, compressed: int, size: int, method: int, offset: int) -> bytes:
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, compressed,
                       size, len(name), 0, 0, 0, 0, 0, offset) + name


def _end(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def build_lying_entry(path: Path) -> None:
    """A stored entry of 1.5 GiB whose directory says it holds 1,000 bytes."""
    name = b"cards/IMG_0001.jpg"
    block = bytes(CHUNK)
    crc = 0
    for _ in range(LIE_BYTES // CHUNK):
        crc = zlib.crc32(block, crc)
    with open(path, "wb") as out:
        out.write(_local_header(name, crc, LIE_BYTES, LIE_BYTES, 0))
        for _ in range(LIE_BYTES // CHUNK):
            out.write(block)
        directory = _central(name, crc, LIE_BYTES, CLAIMED_BYTES, 0, 0)
        cd_offset = out.tell()
        out.write(directory + _end(1, len(directory), cd_offset))


def build_fifty_inflating(path: Path) -> None:
    """50 deflated entries of 99 MB each (the same stream: compressed once)."""
    import os
    pattern = b"".join(os.urandom(700) + bytes(65_536 - 700) for _ in range(16))
    data = (pattern * (INFLATED_BYTES // len(pattern) + 1))[:INFLATED_BYTES]
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = deflater.compress(data) + deflater.flush()
    crc = zlib.crc32(data)
    del data
    directory = bytearray()
    with open(path, "wb") as out:
        for i in range(ENTRIES):
            name = f"cards/IMG_{i:04d}.jpg".encode()
            offset = out.tell()
            out.write(_local_header(name, crc, len(stream), INFLATED_BYTES, 8))
            out.write(stream)
            directory += _central(name, crc, len(stream), INFLATED_BYTES, 8, offset)
        cd_offset = out.tell()
        out.write(bytes(directory) + _end(ENTRIES, len(directory), cd_offset))


def build_big_pngs(path: Path) -> None:
    """8 stored PNGs of 100 megapixels, each its own colour (so none repeats another's bytes)."""
    import io
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(BIG_PNGS):
            out = io.BytesIO()
            Image.new("RGB", (BIG_PNG_SIDE, BIG_PNG_SIDE), (20 * i, 90, 160)).save(
                out, format="PNG", compress_level=1)
            archive.writestr(f"cards/IMG_{i:04d}.png", out.getvalue())


def child(case: str, root: Path) -> None:
    """One worker: inspect, then ingest the first Map item; print what it took."""
    from animl_local import webapp
    from animl_local.standin_api import StandinApi
    from functions.batch import batch_steps
    from functions.image.ingest_image import Services
    from functions.platform import storage
    from functions.platform.budget import ByteBudget
    from functions.platform.graphql_client import AnimlApiClient
    from functions.platform.settings import Settings

    settings = Settings(stage="bench")
    s3 = LocalFileS3(root)
    with StandinApi(root / "api.sqlite3", "bench-key") as api:
        client = AnimlApiClient(api.url, "bench-key")
        batch = webapp.create_batch(client, "bench.zip", "CAM-1")["batch"]  # as the web app
        key = f"{case}.zip"
        inspection = batch_steps.inspect_batch_archive(s3, settings, batch, BUCKET, key)
        [item, *_] = storage.get_json(s3, settings.batch_work_bucket, storage.manifest_key(batch))
        # As the handler builds them: the container's decode budget, from the settings.
        services = Services(s3=s3, api=client, settings=settings,
                            decode_budget=ByteBudget(settings.decode_budget_bytes))
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.perf_counter()
        pinned = {"etag": inspection["archive"]["ETag"]} if "archive" in inspection else {}
        counts = batch_steps.ingest_group(services, batch, BUCKET, key, item["group"],
                                          item["entries"], **pinned)
        seconds = time.perf_counter() - started
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reasons = [row["reason"] for row in storage.get_json(
            s3, settings.batch_work_bucket, storage.outcomes_key(batch, item["group"]))]
    print(json.dumps({
        "entries": len(item["entries"]), "counts": {k: v for k, v in counts.items()
                                                    if k not in ("group", "images")},
        "reasons": sorted({r for r in reasons if r}), "seconds": round(seconds, 1),
        "bytes_written_or_copied_mb": round(s3.written / 1e6),
        "peak_rss_mb": round(peak / 1024), "step_rss_mb": round((peak - baseline) / 1024),
        "tracemalloc_peak_mb": round(traced / 2**20)}))


def function_memory_mb() -> int:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(config["stages"]["prod"]["lambda_functions"]["ingest_image_group"][
        "lambda_memory_size"])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]))
        return
    builders = {"lying-entry": build_lying_entry, "fifty-inflating": build_fifty_inflating,
                "big-pngs": build_big_pngs}
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=sorted(builders), action="append",
                        help="run only this case (again for more); default: all")
    chosen = parser.parse_args().case
    builders = {case: build for case, build in builders.items() if not chosen or case in chosen}
    root = Path(tempfile.mkdtemp(prefix="animl-worker-memory-"))
    try:
        (root / BUCKET).mkdir()
        for case, build in builders.items():
            archive = root / BUCKET / f"{case}.zip"
            build(archive)
            size = archive.stat().st_size
            done = subprocess.run([sys.executable, __file__, "--child", case, str(root)],
                                  capture_output=True, text=True, check=True)
            archive.unlink()  # disk is limited: one archive at a time
            print(json.dumps({"benchmark": "worker_memory", "case": case,
                              "archive_mb": round(size / 1e6),
                              "function_memory_mb": function_memory_mb(),
                              **json.loads(done.stdout.strip().splitlines()[-1])}), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
