"""The whole per-image compute on one thread: read, checks, metadata, md5, both renditions.

No S3 and no API. Prints one JSON line: images, ms_per_image (median of --repeat passes), ...

    python benchmarks/per_image.py ../shared/fixtures/camera-traps/BUOW
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from functions.image.ingest_image import ImageSource, prepare_image  # noqa: E402
from functions.platform.reasons import Rejected  # noqa: E402
from functions.platform.settings import Settings  # noqa: E402


def one_pass(files: list[Path], settings: Settings) -> tuple[float, int]:
    rejected = 0
    started = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        try:
            prepare_image(data, ImageSource(path.name, "bench", path.name), settings)
        except Rejected:
            rejected += 1
    return time.perf_counter() - started, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = sorted(p for p in args.folder.rglob("*") if p.is_file())
    settings = Settings(stage="bench")
    one_pass(files[:2], settings)  # warm imports and caches
    times, rejected = [], 0
    for _ in range(args.repeat):
        seconds, rejected = one_pass(files, settings)
        times.append(seconds)
    median = statistics.median(times)
    print(json.dumps({
        "benchmark": "per_image",
        "folder": args.folder.name,
        "images": len(files),
        "rejected": rejected,
        "repeat": args.repeat,
        "ms_per_image": round(1000 * median / len(files), 2),
        "ms_per_image_best": round(1000 * min(times) / len(files), 2),
        "megabytes": round(sum(p.stat().st_size for p in files) / 1e6, 1),
    }))


if __name__ == "__main__":
    main()
