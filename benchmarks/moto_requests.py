"""What one PutObject costs the process that holds the local stage's moto, in CPU.

A local run's main process answers every AWS request of the batch (a 1,000-photo run makes about
4,000 PutObject: three serving copies and one outcome per photo), and `batch_run` shows that
process's CPU is what bounds the run. This prints that cost per request, two ways:
- in_process: the embedded stage as `animl-ingest run` uses it; the client's work (botocore's
  serializing, signing, parsing) and moto's (routing, storing) in one process;
- served: moto in the stage's process behind its HTTP endpoint (`animl-ingest serve`), the
  client in a process of its own; `server_cpu_ms` is the stage process's CPU per request, the
  figure that would bound a run whose handlers ran elsewhere.
Bodies are photo-sized (1.1 MB, as batch_run's generated photos) and rendition-sized (100 KB).
Prints one JSON line; each figure is the median of --repeat rounds of --puts requests.

    python benchmarks/moto_requests.py [--puts 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {"photo": 1_100_000, "rendition": 100_000}


def put_many(s3: Any, bucket: str, prefix: str, body: bytes, count: int) -> None:
    for index in range(count):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{index}.jpg", Body=body,
                      ContentType="image/jpeg")


def in_process_ms(s3: Any, bucket: str, body: bytes, count: int, rounds: int) -> float:
    """This process's CPU per PutObject (client and moto), the median of `rounds`."""
    put_many(s3, bucket, "warm", body, 5)
    runs = []
    for round_ in range(rounds):
        started = time.process_time()
        put_many(s3, bucket, f"in-process-{len(body)}-{round_}", body, count)
        runs.append((time.process_time() - started) / count * 1000)
    return round(statistics.median(runs), 2)


def served_ms(endpoint: str, region: str, bucket: str, size: int, count: int, rounds: int
              ) -> tuple[float, float]:
    """(the stage process's CPU, the client process's CPU) per PutObject through `endpoint`,
    each the median of `rounds`."""
    server, client = [], []
    for round_ in range(rounds):
        started = time.process_time()
        done = subprocess.run(
            [sys.executable, __file__, "--client", endpoint, region, bucket, str(size),
             str(count), str(round_)],
            capture_output=True, text=True, timeout=600, check=True)
        server.append((time.process_time() - started) / count * 1000)
        client.append(float(done.stdout.strip().splitlines()[-1]))
    return round(statistics.median(server), 2), round(statistics.median(client), 2)


def client_main(endpoint: str, region: str, bucket: str, size: int, count: int, round_: int
                ) -> None:
    """In its own process: `count` puts through `endpoint`; prints its own CPU per put (ms)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    body = os.urandom(size)
    started = time.process_time()
    put_many(s3, bucket, f"served-{size}-{round_}", body, count)
    print((time.process_time() - started) / count * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--puts", type=int, default=200, help="requests per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each way and size")
    parser.add_argument("--client", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        endpoint, region, bucket, size, count, round_ = args.client
        client_main(endpoint, region, bucket, int(size), int(count), int(round_))
        return
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from animl_local.engine import EmbeddedStage
    from animl_local.local_run import local_settings
    from animl_local.standin_api import StandinApi

    # No image workers: nothing here decodes images.
    settings = replace(local_settings(), image_worker_processes=0)
    bucket = settings.serving_bucket
    figures: dict[str, Any] = {"benchmark": "moto_requests", "puts": args.puts,
                               "repeat": args.repeat}
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="animl-bench-") as scratch, \
            StandinApi(Path(scratch) / "api.sqlite3", key) as standin:
        with EmbeddedStage(settings, standin.url, key) as stage:
            s3 = stage.client("s3")
            figures["in_process_cpu_ms"] = {
                name: in_process_ms(s3, bucket, os.urandom(size), args.puts, args.repeat)
                for name, size in SIZES.items()}
        with EmbeddedStage(settings, standin.url, key, server_port=0) as stage:
            assert stage.endpoint_url is not None  # a served stage has one
            served = {name: served_ms(stage.endpoint_url, settings.region, bucket, size,
                                      args.puts, args.repeat)
                      for name, size in SIZES.items()}
    figures["served_server_cpu_ms"] = {name: pair[0] for name, pair in served.items()}
    figures["served_client_cpu_ms"] = {name: pair[1] for name, pair in served.items()}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
