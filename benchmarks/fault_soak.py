"""A generated N-image batch on the embedded engine while the API and S3 fail at random.

Transient faults at `--rate` (default 10%) of the API calls ingest makes (503, 429 with
Retry-After, 500, timeouts, and commits whose answer is lost) and of the S3 calls its Lambda
handlers make (503 SlowDown, 500 InternalError, 400 RequestTimeout). Prints one JSON line:
the first execution's status, the re-drives it took to succeed, images lost and duplicated,
surplus ImageErrors (count and the first 20; animl_local.accounting, zero allowed), the faults
injected, and wall seconds.

    python benchmarks/fault_soak.py --images 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch_run import generate  # noqa: E402  (this script's folder is on the path)

from animl_local import operations  # noqa: E402
from animl_local.accounting import account_for_batch  # noqa: E402
from animl_local.engine import ACCOUNT_ID, EmbeddedStage  # noqa: E402
from animl_local.local_run import archive_for, local_settings  # noqa: E402
from animl_local.s3_faults import s3_faults  # noqa: E402
from animl_local.standin_api import StandinApi, StandinAws  # noqa: E402
from animl_local.standin_api.server import RandomFaults  # noqa: E402
from animl_local.webapp import upload_batch  # noqa: E402
from functions.platform.graphql_client import AnimlApiClient  # noqa: E402
from functions.platform.runtime import AWS_CLIENT_CONFIG  # noqa: E402

MAX_REDRIVES = 5


def soak(root: Path, images: int, rate: float, seed: int, api_timeout: float) -> dict[str, Any]:
    generate(root / "cards", images, (640, 480))
    archive = archive_for(root / "cards", root)
    paths = sorted(str(p.relative_to(root / "cards")) for p in (root / "cards").rglob("*.JPG"))
    settings = replace(local_settings(), api_timeout_seconds=api_timeout)
    api_key = secrets.token_urlsafe(24)
    started = time.perf_counter()
    aws = StandinAws(settings.stage, settings.region, ACCOUNT_ID)
    with s3_faults(rate, seed) as s3f, \
            StandinApi(root / "api.sqlite3", api_key, aws=aws) as api, \
            EmbeddedStage(settings, api.url, api_key) as stage:
        batch_id = upload_batch(AnimlApiClient(api.url, api_key), archive, "cards",
                                put_part=stage.put_part)
        api.random_faults = api_faults = RandomFaults(rate, seed,
                                                      hold_seconds=api_timeout + 1)
        first = stage.wait_for_execution(batch_id)
        result, redrives = first, 0
        while result["status"] != "SUCCEEDED" and redrives < MAX_REDRIVES:
            redrives += 1
            started_again = operations.redrive(stage.client("stepfunctions"), settings,
                                               ACCOUNT_ID, batch_id)
            result = stage.wait_for_execution(batch_id, execution_name=started_again.get(
                "name", batch_id))
        api.random_faults = None
        s3f.rate = 0.0
        seconds = time.perf_counter() - started
        accounting = account_for_batch(stage.client("s3"), settings, api.store, batch_id, paths)
    return {
        "benchmark": "fault_soak",
        "images": images,
        "fault_rate": rate,
        "first_execution_status": first["status"],
        "final_status": result["status"],
        "redrives_needed": redrives,
        "images_lost": len(accounting.lost),
        "images_duplicated": len(accounting.duplicated),
        "ingested": accounting.ingested,
        "dead_lettered": accounting.dead_lettered,
        "problems": accounting.problems,
        "image_error_surplus": accounting.image_error_surplus,
        "surplus_image_errors": accounting.surplus_image_errors[:20],
        "repeated_rejection_errors": len(accounting.repeated_rejection_errors),
        "invariant_holds": accounting.exact,
        "api_faults": api_faults.count(),
        "api_faults_committed": api_faults.count(commit=True),
        "api_faults_by_kind": _by_kind(api_faults.injected),
        "s3_faults": s3f.count(),
        "s3_faults_by_kind": dict(s3f.injected),
        "s3_retry_config": getattr(AWS_CLIENT_CONFIG, "retries", None),
        "api_retry": {"attempts": settings.api_retry_attempts,
                      "base_seconds": settings.api_retry_base_seconds,
                      "cap_seconds": settings.api_retry_cap_seconds,
                      "timeout_seconds": settings.api_timeout_seconds},
        "wall_seconds": round(seconds, 1),
    }


def _by_kind(injected: Any) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for (_, kind), count in injected.items():
        kinds[kind] = kinds.get(kind, 0) + count
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.10, help="fault rate, API and S3")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--api-timeout", type=float, default=10.0,
                        help="the API client's timeout; injected timeouts hold 1 s longer")
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="animl-bench-") as scratch:
        print(json.dumps(soak(Path(scratch), args.images, args.rate, args.seed,
                              args.api_timeout)))


if __name__ == "__main__":
    main()
