"""One IngestImageGroup invocation over 50 BUOW-sized images, with real-world latencies injected.

On the embedded engine, through the Lambda adapter (as Step Functions invokes it): every S3 request
waits `--s3-ms` and every Animl API call `--api-ms` before it is answered. Prints one JSON line:
ms_per_image (wall, with latency), compute_ms_per_image (the same group with none),
gb_seconds_per_1000_images (the function's configured memory times its wall time), and how many
SSM / Secrets Manager reads the function made. Each figure is the median of --repeat groups (3;
each of its own images), as this machine's timings wander by a tenth from run to run; the
`*_runs` lists give every run.

    python benchmarks/group_latency.py [--images 50] [--s3-ms 20] [--api-ms 150] [--concurrency N]
                                       [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import botocore.client  # noqa: E402

from animl_local.aws_calls import recording_aws_calls  # noqa: E402
from animl_local.engine import EmbeddedStage  # noqa: E402
from animl_local.standin_api import StandinApi  # noqa: E402
from animl_local.webapp import create_batch  # noqa: E402
from functions.batch import batch_steps  # noqa: E402
from functions.platform import storage  # noqa: E402
from functions.platform.graphql_client import AnimlApiClient  # noqa: E402
from functions.platform.settings import Settings  # noqa: E402

BUOW = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "camera-traps" / "BUOW"
FUNCTION = "ingest_image_group"
MEMORY_GB = 3008 / 1024  # the function's configured memory (.chalice/config.json)


def archive_members(count: int, run: int) -> dict[str, bytes]:
    """`count` camera-trap images no other run has: the BUOW photos, each made unique by zero
    padding after its end-of-image marker (decoders ignore it)."""
    photos = sorted(BUOW.glob("*.JPG"))
    return {f"DCIM/{index:03d}_{photos[index % len(photos)].name}":
            photos[index % len(photos)].read_bytes() + b"\x00" * (1 + index + run * count)
            for index in range(count)}


@contextmanager
def s3_latency(seconds: float) -> Iterator[None]:
    """Every S3 call of this process waits `seconds` first (moto answers at once)."""
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def delayed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "s3":
            time.sleep(seconds)
        return original(client, operation, params)

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", delayed):
        yield


def zip_bytes(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def one_group(stage: EmbeddedStage, api: AnimlApiClient, members: dict[str, bytes],
              s3_seconds: float) -> float:
    """Wall seconds of one invocation over the archive's single group."""
    settings = stage.settings
    batch_id = create_batch(api, "bench.zip", serial="BENCH-1")["batch"]
    s3 = stage.client("s3")
    key = f"{batch_id}.zip"
    s3.put_object(Bucket=settings.ingestion_bucket + "-bench", Key=key, Body=zip_bytes(members))
    archive = {"Bucket": settings.ingestion_bucket + "-bench", "Key": key}
    batch_steps.inspect_batch_archive(s3, settings, batch_id, archive["Bucket"], key)
    [item] = storage.get_json(s3, settings.batch_work_bucket, storage.manifest_key(batch_id))
    payload = json.dumps({"batchId": batch_id, "archive": archive, "item": item}).encode()
    with s3_latency(s3_seconds):
        started = time.perf_counter()
        reply = stage.client("lambda").invoke(FunctionName=stage.function_arns[FUNCTION],
                                              Payload=payload)
        seconds = time.perf_counter() - started
    result = json.loads(reply["Payload"].read())
    if reply.get("FunctionError") or result.get("ingested") != len(members):
        raise SystemExit(f"the group did not ingest every image: {result}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--s3-ms", type=float, default=20.0)
    parser.add_argument("--api-ms", type=float, default=150.0)
    parser.add_argument("--concurrency", type=int,
                        default=Settings(stage="bench").group_concurrency,
                        help="entries of the group worked at once (1: one after another)")
    parser.add_argument("--repeat", type=int, default=3, help="groups timed each way")
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    # As on Lambda: the group's threads, no process pool.
    settings = Settings(stage="bench", group_concurrency=args.concurrency)
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="animl-bench-") as scratch, \
            StandinApi(Path(scratch) / "api.sqlite3", key) as standin, \
            EmbeddedStage(settings, standin.url, key) as stage:
        # A bucket the ingestion notification does not watch: nothing starts a batch.
        stage.client("s3").create_bucket(Bucket=settings.ingestion_bucket + "-bench",
                                         CreateBucketConfiguration={
                                             "LocationConstraint": settings.region})
        api = AnimlApiClient(standin.url, key)
        with recording_aws_calls() as calls:  # the function's own calls, every invocation
            compute_runs = [one_group(stage, api, archive_members(args.images, run), 0.0)
                            for run in range(args.repeat)]
            standin.latency_seconds = args.api_ms / 1000
            wall_runs = [one_group(stage, api, archive_members(args.images, args.repeat + run),
                                   args.s3_ms / 1000) for run in range(args.repeat)]
    compute_seconds, wall_seconds = statistics.median(compute_runs), statistics.median(wall_runs)
    reads = {service: sum(1 for call in calls if call.service == service)
             for service in ("ssm", "secretsmanager")}
    print(json.dumps({
        "benchmark": "group_latency",
        "images": args.images,
        "s3_ms": args.s3_ms,
        "api_ms": args.api_ms,
        "group_concurrency": settings.group_concurrency,
        "ms_per_image": round(1000 * wall_seconds / args.images, 1),
        "compute_ms_per_image": round(1000 * compute_seconds / args.images, 1),
        "ms_per_image_runs": [round(1000 * s / args.images, 1) for s in wall_runs],
        "compute_ms_per_image_runs": [round(1000 * s / args.images, 1) for s in compute_runs],
        "gb_seconds_per_1000_images": round(MEMORY_GB * wall_seconds * 1000 / args.images, 1),
        "ssm_reads": reads["ssm"],
        "secrets_reads": reads["secretsmanager"],
    }))


if __name__ == "__main__":
    main()
