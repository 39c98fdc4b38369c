"""`animl-ingest run` on a generated N-image archive: throughput and Step Functions economy.

Prints one JSON line: images, seconds, images_per_second, Lambda invocations per image, parent
and child state transitions; and the CPU the run took in this process (the stage: moto, the
handlers, the stand-in API) and in the image workers, with `cpu_ceiling_images_per_second`:
the rate were that CPU spread over all of this machine's cores with none idle, which no
scheduling of the same work can pass.

    python benchmarks/batch_run.py --images 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from animl_local.local_run import archive_for, local_settings, run_batch  # noqa: E402
from animl_local.samples import sample_jpeg  # noqa: E402


def generate(folder: Path, count: int, size: tuple[int, int]) -> None:
    start = datetime(2024, 6, 1, 21, 0, 0)
    for index in range(count):
        sub = folder / f"CAM{index % 4:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        sample_jpeg(sub / f"IMG_{index:05d}.JPG", start + timedelta(seconds=37 * index),
                    seed=index, size=size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--image-processes", type=int, default=None,
                        help="image worker processes (default: the local stage's, one per core)")
    parser.add_argument("--group-concurrency", type=int, default=None,
                        help="entries of a group worked at once (default: the stage's)")
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="animl-bench-") as scratch:
        root = Path(scratch)
        generate(root / "cards", args.images, (args.width, args.height))
        archive = archive_for(root / "cards", root)
        archive_mb = round(archive.stat().st_size / 1e6, 1)
        started = time.perf_counter()
        own_cpu, workers_cpu = time.process_time(), children_cpu_seconds()
        settings = local_settings()
        if args.image_processes is not None:
            settings = replace(settings, image_worker_processes=args.image_processes)
        if args.group_concurrency is not None:
            settings = replace(settings, group_concurrency=args.group_concurrency)
        result = run_batch(archive, "cards", root / "out", None, root, settings=settings)
        seconds = time.perf_counter() - started
        # The image workers end with the stage, so their CPU is counted by now.
        own_cpu, workers_cpu = time.process_time() - own_cpu, children_cpu_seconds() - workers_cpu
        report = json.loads((root / "out" / "report.json").read_text())
    execution = report["execution"]
    images = len(report["images"])
    print(json.dumps({
        "benchmark": "batch_run",
        "status": result.status,
        "images": images,
        "archive_mb": archive_mb,
        "seconds": round(seconds, 1),
        "images_per_second": round(images / seconds, 1),
        "report_seconds": round(result.report_seconds, 1),
        "report_share_of_wall": round(result.report_seconds / seconds, 3),
        "peak_rss_mb": peak_rss_mb(),
        "stage_process_cpu_seconds": round(own_cpu, 1),
        "image_workers_cpu_seconds": round(workers_cpu, 1),
        "cpu_ceiling_images_per_second": round(
            images * (os.cpu_count() or 1) / (own_cpu + workers_cpu), 1),
        "image_processes": settings.image_worker_processes,
        "lambda_invocations": execution["lambdaInvocations"],
        "lambda_invocations_per_image": round(execution["lambdaInvocations"] / images, 4),
        "parent_state_transitions": execution["parent"]["stateTransitions"],
        "child_state_transitions": execution["children"]["stateTransitions"],
        "child_executions": execution["children"]["executions"],
        "outcomes": result.counts,
        "reasons": report_reasons(report),
    }))


def peak_rss_mb() -> int:
    """This process's peak resident memory, and its largest child's (the image workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024)  # Linux reports KiB


def children_cpu_seconds() -> float:
    """User and system CPU of this process's ended children (the image workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report_reasons(report: dict) -> dict[str, int]:
    """Why images did not go in (a generated batch should have none)."""
    found: dict[str, int] = {}
    for row in report["images"]:
        if row["reason"]:
            text = f"{row['reason']}: {row.get('detail') or ''}"[:200]
            found[text] = found.get(text, 0) + 1
    return found


if __name__ == "__main__":
    main()
