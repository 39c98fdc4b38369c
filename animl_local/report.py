"""A local run's outputs: report.json, copies of the batch's serving and dead-letter objects."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.image.ingest_image import DEAD_LETTER, INGESTED, SKIPPED
from functions.platform import storage
from functions.platform.settings import Settings


def batch_images(s3: Any, settings: Settings, batch_id: str) -> tuple[list[dict[str, Any]], bool]:
    """Per-image rows: from the batch report, or (if the batch never got there) the outcomes so far.

    The flag says whether the rows are complete (the report exists).
    """
    work = settings.batch_work_bucket
    try:
        return storage.get_json(s3, work, storage.report_key(batch_id))["images"], True
    except s3.exceptions.NoSuchKey:
        pass
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=work, Prefix=storage.outcomes_prefix(batch_id))
    rows: list[dict[str, Any]] = []
    for obj in (obj for page in pages for obj in page.get("Contents", [])):
        rows.extend(storage.get_json(s3, work, obj["Key"]))
    return rows, False


def execution_summary(described: dict[str, Any], invocations: dict[str, int],
                      workflow_functions: WorkflowFunctions) -> dict[str, Any]:
    """The execution as report.json shows it, with work split between parent and children.

    `described` is `operations.describe_batch`'s view (timeline, map runs); `invocations`
    counts Lambda calls by function name. The child workflow is a single Task
    state, so each child Lambda call is one child state transition (retries included). Calls of
    functions outside the state machine (the S3 entry handler) are counted under "entry".
    """
    description, map_runs = described["execution"], described["mapRuns"]
    entered = [row["state"] for row in described["timeline"]]
    # Only ingest's own functions count; the API's inference Lambda runs behind its queue.
    invocations = {f: n for f, n in invocations.items() if f.startswith(workflow_functions.prefix)}
    child_calls = sum(n for f, n in invocations.items() if f in workflow_functions.children)
    parent_calls = sum(n for f, n in invocations.items() if f in workflow_functions.parent)
    all_calls = sum(invocations.values())
    children = {
        "executions": sum(run["executions"]["total"] for run in map_runs),
        "failed": sum(run["executions"]["failed"] for run in map_runs),
        "stateTransitions": child_calls,
        "lambdaInvocations": child_calls,
    }
    summary = {
        "arn": description["executionArn"],
        "status": description["status"],
        "stateTransitions": len(entered) + child_calls,
        "lambdaInvocations": all_calls,
        "parent": {"stateTransitions": len(entered), "lambdaInvocations": parent_calls,
                   "statesEntered": entered},
        "children": children,
        "entry": {"lambdaInvocations": all_calls - parent_calls - child_calls},
        "lambdaInvocationsByFunction": dict(sorted(invocations.items())),
    }
    if description["status"] != "SUCCEEDED":
        summary.update(failedState=entered[-1] if entered else None,
                       error=description.get("error"), cause=description.get("cause"))
    return summary


@dataclass(frozen=True)
class WorkflowFunctions:
    """Deployed function names the parent workflow calls, and those its children call."""

    parent: frozenset[str]
    children: frozenset[str]
    prefix: str  # every function of the stage's app starts so


# Writes an object's bytes (bucket, key) to a file whose folder exists.
ObjectCopier = Callable[[str, str, Path], None]


def mirror_objects(copy_object: ObjectCopier, settings: Settings, images: list[dict[str, Any]],
                   out: Path) -> int:
    """Copy the images' serving and dead-letter objects under out/serving and out/dead-letter."""
    copied = 0
    for row in images:
        if row["outcome"] == INGESTED:
            bucket, folder = settings.serving_bucket, out / "serving"
        elif row["outcome"] in (DEAD_LETTER, SKIPPED):  # files that are not images are kept too
            bucket, folder = settings.dead_letter_bucket, out / "dead-letter"
        else:
            continue
        for key in row.get("keys") or []:
            target = mirror_path(folder, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_object(bucket, key, target)
            copied += 1
    return copied


NAME_MAX = 255  # bytes in one path segment, on the file systems a local run writes to


def mirror_path(folder: Path, key: str) -> Path:
    """Where an object's copy goes under `folder`: its key, each segment the file system could
    not hold shortened as keys are (a hash, then the segment's tail), so the copy is made."""
    segments = [storage.shorten(segment, NAME_MAX) for segment in key.split("/")
                if segment not in ("", ".", "..")]  # a copy never lands outside `folder`
    return folder.joinpath(*segments)


def write_report(out: Path, batch: dict[str, Any] | None, api_counts: dict[str, Any],
                 execution: dict[str, Any], images: list[dict[str, Any]], complete: bool) -> Path:
    """`batch`: what ingest set on the batch; `api_counts`: what the web app would count
    (images and imageErrors of the batch in the stand-in API's database)."""
    report = {"batch": batch, "api": api_counts, "execution": execution,
              "imagesComplete": complete, "images": images}
    path = out / "report.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
