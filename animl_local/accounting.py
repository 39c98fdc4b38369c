"""Every entry of a batch accounted for exactly once: what the fault suite and soak assert.

An image entry is either ingested (one API record with its path, whose id has the three serving
objects) or dead-lettered (one dead-letter object under a reason); nothing else is left in the
stage's serving or dead-letter buckets for it, and the API holds no record the outcomes do not
name. ImageErrors are counted too, and break the invariant when they are not exact: none for an
ingested image's save (an E11000, from a createImage sent again after its answer was lost), and
exactly one per entry refused before the API (a second one would be a createImageError sent
again after its answer was lost: the client reads the batch's ImageErrors before it resends).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from animl_local.report import batch_images
from animl_local.standin_api.store import Store
from functions.image.ingest_image import DEAD_LETTER, INGESTED
from functions.platform import reasons, storage
from functions.platform.settings import Settings


@dataclass
class Accounting:
    entries: int
    ingested: int = 0
    dead_lettered: int = 0
    lost: list[str] = field(default_factory=list)  # no outcome, or no trace of it
    duplicated: list[str] = field(default_factory=list)  # two outcomes, records or objects
    problems: list[str] = field(default_factory=list)
    # E11000 ImageErrors on ingested images, "path: error" for each: none allowed
    surplus_image_errors: list[str] = field(default_factory=list)
    # Entries refused before the API with more than one ImageError, "path: n times": none
    # allowed
    repeated_rejection_errors: list[str] = field(default_factory=list)

    @property
    def image_error_surplus(self) -> int:
        return len(self.surplus_image_errors)

    @property
    def exact(self) -> bool:
        return not (self.lost or self.duplicated or self.problems or self.surplus_image_errors
                    or self.repeated_rejection_errors)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "ingested": self.ingested,
                "dead_lettered": self.dead_lettered, "lost": len(self.lost),
                "duplicated": len(self.duplicated), "problems": self.problems[:20],
                "image_error_surplus": self.image_error_surplus,
                "surplus_image_errors": self.surplus_image_errors[:20],
                "repeated_rejection_errors": self.repeated_rejection_errors[:20]}


def _keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def account_for_batch(s3: Any, settings: Settings, store: Store, batch_id: str,
                      image_paths: list[str]) -> Accounting:
    """Check the invariant for `image_paths` (the batch's image entries, each name once),
    assuming the stage's buckets hold this batch only."""
    rows, complete = batch_images(s3, settings, batch_id)
    found = Accounting(entries=len(image_paths))
    if not complete:
        found.problems.append("the batch has no report")
    by_path = Counter(row["path"] for row in rows)
    records = Counter(image["path"] for image in store.images(batch_id))
    serving = _keys(s3, settings.serving_bucket)
    dead_letter = _keys(s3, settings.dead_letter_bucket)
    expected_serving: set[str] = set()
    expected_dead: set[str] = set()
    refused_before_api: set[str] = set()
    for path in image_paths:
        if by_path[path] == 0:
            found.lost.append(path)
            continue
        if by_path[path] > 1:
            found.duplicated.append(path)
    for row in rows:
        if row["path"] not in image_paths:
            continue
        if row["outcome"] == INGESTED:
            found.ingested += 1
            _check_ingested(row, records, serving, found)
            expected_serving.update(row["keys"])
        elif row["outcome"] == DEAD_LETTER:
            found.dead_lettered += 1
            _check_dead_lettered(row, dead_letter, found)
            expected_dead.update(row["keys"])
            if row["id"] is None and row["md"] is None:
                refused_before_api.add(row["path"])
        else:
            found.problems.append(f"{row['path']}: outcome {row['outcome']}")
    unnamed = set(records) - {row["path"] for row in rows if row["outcome"] == INGESTED}
    found.duplicated += sorted(f"API record of {path} not ingested" for path in unnamed)
    found.problems += [f"serving object {key} is no entry's" for key in
                       sorted(serving - expected_serving)]
    found.problems += [f"dead-letter object {key} is no entry's" for key in
                       sorted(dead_letter - expected_dead)]
    ingested_ids = {row["id"] for row in rows if row["outcome"] == INGESTED}
    # A repeated entry (same path, same bytes) is the duplicate of an ingested image: its save
    # collided, and the API's E11000 ImageError for it is the record of that, not surplus.
    repeats = Counter(row["id"] for row in rows if row["reason"] == reasons.DUPLICATE_IMAGE)
    _count_image_errors(store, batch_id, refused_before_api, ingested_ids, repeats, found)
    return found


def _check_ingested(row: dict[str, Any], records: Counter[str], serving: set[str],
                    found: Accounting) -> None:
    path = row["path"]
    if records[path] != 1:
        (found.duplicated if records[path] > 1 else found.lost).append(
            f"{path}: {records[path]} API records")
    renditions = [key for key in row["keys"] if key in serving]
    if len(row["keys"]) != len(storage.RENDITIONS) or len(renditions) != len(row["keys"]):
        found.lost.append(f"{path}: {len(renditions)} of {len(storage.RENDITIONS)} serving "
                          "objects")


def _check_dead_lettered(row: dict[str, Any], dead_letter: set[str], found: Accounting) -> None:
    path = row["path"]
    if not row["reason"]:
        found.problems.append(f"{path}: dead-lettered without a reason")
    if len(row["keys"]) != 1 or row["keys"][0] not in dead_letter:
        found.lost.append(f"{path}: its dead-letter object is missing")


def _count_image_errors(store: Store, batch_id: str, refused: set[str], ingested_ids: set[str],
                        repeats: Counter[str], found: Accounting) -> None:
    """Exactly one ImageError for each entry refused before the API (none: lost; more:
    repeated). Surplus: an E11000 on an image that was ingested (a save sent again after its
    answer was lost), beyond one per entry reported as its duplicate. The API's other ImageErrors
    (validation errors of dead-lettered images, failed inference requests) are its own record
    of the batch, not surplus."""
    errors = store.image_errors(batch_id)
    per_refused = Counter(error["image"] for error in errors if error["image"] in refused)
    for path in refused:
        if per_refused[path] == 0:
            found.lost.append(f"{path}: no ImageError")
    found.repeated_rejection_errors += [f"{path}: ImageError {n} times" for path, n in
                                        sorted(per_refused.items()) if n > 1]
    for error in errors:
        if not reasons.is_duplicate(error["error"] or "") or error["image"] not in ingested_ids:
            continue
        if repeats[error["image"]] > 0:
            repeats[error["image"]] -= 1
        else:
            found.surplus_image_errors.append(f"{error['path'] or error['image']}: "
                                              f"{error['error']}")
