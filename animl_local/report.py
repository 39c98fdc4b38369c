"""A local run's outputs: report.json, copies of the batch's serving and dead-letter objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions import storage
from functions.ingest_image import DEAD_LETTER, INGESTED
from functions.settings import Settings


def batch_images(s3: Any, settings: Settings, batch_id: str) -> tuple[list[dict[str, Any]], bool]:
    """Per-image rows: from the batch report, or (if the batch never got there) the outcomes so far.

    The flag says whether the rows are complete (the report exists).
    """
    work = settings.batch_work_bucket
    try:
        return storage.get_json(s3, work, storage.report_key(batch_id))["images"], True
    except s3.exceptions.NoSuchKey:
        pass
    listed = s3.list_objects_v2(Bucket=work, Prefix=storage.outcomes_prefix(batch_id))
    rows: list[dict[str, Any]] = []
    for obj in listed.get("Contents", []):
        rows.extend(storage.get_json(s3, work, obj["Key"]))
    return rows, False


def execution_summary(description: dict[str, Any], history: list[dict[str, Any]],
                      lambda_invocations: int) -> dict[str, Any]:
    entered = [e["stateEnteredEventDetails"]["name"] for e in history
               if e["type"].endswith("StateEntered")]
    summary = {
        "arn": description["executionArn"],
        "status": description["status"],
        "stateTransitions": len(entered),
        "statesEntered": entered,
        "lambdaInvocations": lambda_invocations,
    }
    if description["status"] != "SUCCEEDED":
        summary.update(failedState=entered[-1] if entered else None,
                       error=description.get("error"), cause=description.get("cause"))
    return summary


def mirror_objects(s3: Any, settings: Settings, images: list[dict[str, Any]], out: Path) -> int:
    """Copy the images' serving and dead-letter objects under out/serving and out/dead-letter."""
    copied = 0
    for row in images:
        if row["outcome"] == INGESTED:
            bucket, folder = settings.serving_bucket, out / "serving"
        elif row["outcome"] == DEAD_LETTER:
            bucket, folder = settings.dead_letter_bucket, out / "dead-letter"
        else:
            continue
        for key in row.get("keys") or []:
            target = folder / key
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            copied += 1
    return copied


def write_report(out: Path, batch: dict[str, Any] | None, execution: dict[str, Any],
                 images: list[dict[str, Any]], complete: bool) -> Path:
    report = {"batch": batch, "execution": execution, "imagesComplete": complete,
              "images": images}
    path = out / "report.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
