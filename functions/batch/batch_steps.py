"""The steps of the IngestBatch state machine, as plain functions over explicit clients."""

from __future__ import annotations

import contextvars
import posixpath
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from functions.archive.manifest import manifest_items
from functions.archive.zip_reader import (
    EntryLimits,
    PrefetchedSpan,
    S3RangeReader,
    ZipEntry,
    entry_data_range,
    inspect_archive,
    prefetch_group,
    read_entry,
)
from functions.batch import batch_record
from functions.image.ingest_image import (
    DEAD_LETTER,
    SKIPPED,
    ImageSource,
    Outcome,
    Prepared,
    Rejection,
    Services,
    ingest_image,
    prepare_or_reject,
    record_rejection,
)
from functions.platform import logs, reasons, storage
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.reasons import Rejected
from functions.platform.settings import Settings

logger = logs.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class IncompleteBatch(Exception):
    """Some manifest items have no recorded outcome: the batch must not be called done."""


def inspect_batch_archive(s3: Any, settings: Settings, batch_id: str, bucket: str, key: str
                          ) -> dict[str, Any]:
    """Read the archive's directory, write the manifest and return the counts for the batch."""
    reader = S3RangeReader(s3, bucket, key)
    limits = EntryLimits(settings.max_image_bytes, settings.max_compression_ratio,
                         settings.max_batch_uncompressed_bytes)
    listing = inspect_archive(reader, limits)
    items = manifest_items(listing, settings.group_max_entries, settings.group_max_bytes)
    work = settings.batch_work_bucket
    storage.put_json(s3, work, storage.manifest_key(batch_id), items)
    storage.put_json(s3, work, storage.inspection_key(batch_id), {"skipped": listing.skipped})
    return {
        "total": len(listing.images),
        "groups": len(items),
        "notImages": len(listing.others),
        "skipped": len(listing.skipped),
        "archiveBytes": reader.size,
        "manifest": {"Bucket": work, "Key": storage.manifest_key(batch_id)},
    }


def ingest_group(services: Services, batch_id: str, bucket: str, key: str, group: int,
                 entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Ingest one Map item's entries; write their outcomes to S3 and return the counts.

    A group whose outcomes are already stored (a re-driven batch) is not worked again.
    """
    outcomes_key = storage.outcomes_key(batch_id, group)
    stored = _stored_outcomes(services, outcomes_key, len(entries))
    if stored is not None:
        return {"group": group, "images": len(stored), "reused": True,
                **Counter(row["outcome"] for row in stored)}
    retry_project = _retry_project(services, batch_id, group)
    archive = S3RangeReader(services.s3, bucket, key)
    group_entries = [ZipEntry.from_item(item) for item in entries]
    # Neighbouring entries come in one ranged GET (bounded: a group is at most this many bytes).
    reader = prefetch_group(archive, group_entries, 2 * services.settings.group_max_bytes)
    read = [_read_entry(services, reader, batch_id, bucket, key, entry, retry_project)
            for entry in group_entries]
    outcomes = _ingest_entries(services, reader, read)
    storage.put_json(services.s3, services.settings.batch_work_bucket, outcomes_key,
                     [o.to_dict() for o in outcomes])
    counts = Counter(o.outcome for o in outcomes)
    return {"group": group, "images": len(outcomes), **counts}


def _retry_project(services: Services, batch_id: str, group: int) -> str | None:
    """None on a group's first attempt (which marks it begun); on a later one, the batch's
    project, where its images saved by an earlier attempt are looked for."""
    work, marker = services.settings.batch_work_bucket, storage.attempt_key(batch_id, group)
    try:
        services.s3.get_object(Bucket=work, Key=marker)
    except services.s3.exceptions.NoSuchKey:
        services.s3.put_object(Bucket=work, Key=marker, Body=b"")
        return None
    record = batch_record.read_batch_record(services.s3, services.settings, batch_id)
    project: str | None = record.get("projectId")
    return project


def _stored_outcomes(services: Services, key: str, expected: int) -> list[dict[str, Any]] | None:
    try:
        rows = storage.get_json(services.s3, services.settings.batch_work_bucket, key)
    except services.s3.exceptions.NoSuchKey:
        return None
    return rows if len(rows) == expected else None


@dataclass(frozen=True)
class _ReadEntry:
    source: ImageSource
    entry: ZipEntry
    data: bytes | None = None
    unreadable: Rejected | None = None  # then it is dead-lettered as its stored bytes


def _read_entry(services: Services, reader: S3RangeReader | PrefetchedSpan, batch_id: str,
                bucket: str, key: str, entry: ZipEntry, retry_project: str | None = None
                ) -> _ReadEntry:
    source = ImageSource(
        file_name=posixpath.basename(entry.path), bucket=bucket, key=key, batch_id=batch_id,
        path=entry.path, origin=storage.entry_origin(batch_id, entry.header_offset),
        retry_project=retry_project,
    )
    try:
        return _ReadEntry(source, entry,
                          data=read_entry(reader, entry, services.settings.max_image_bytes))
    except Rejected as unreadable:
        return _ReadEntry(source, entry, unreadable=unreadable)


def _ingest_entries(services: Services, reader: S3RangeReader | PrefetchedSpan,
                    read: list[_ReadEntry]) -> list[Outcome]:
    """Each entry's outcome, in entry order, with up to `group_concurrency` entries at once.

    A group's time is mostly waiting (createImage, S3 writes), and Pillow releases the GIL while
    it decodes, so threads hide the waits and use every vCPU. Entries with the same bytes are
    recorded one after another in entry order, so which of them is the duplicate never depends
    on timing.
    """
    with ThreadPoolExecutor(max_workers=services.settings.group_concurrency) as pool:
        prepared = _in_threads(pool, lambda item: _prepare(services, item), read)
        same_bytes: dict[str, list[int]] = {}
        for index, ready in enumerate(prepared):
            identity = ready.md["Hash"] if isinstance(ready, Prepared) else f"entry {index}"
            same_bytes.setdefault(identity, []).append(index)
        outcomes: dict[int, Outcome] = {}

        def finish(indices: list[int]) -> None:
            paths: set[str] = set()
            for index in indices:
                item = read[index]
                if isinstance(prepared[index], Prepared) and item.source.path in paths:
                    # The same name with the same bytes again: the earlier entry is the image.
                    item = replace(item, source=replace(item.source, repeats_earlier_entry=True))
                paths.add(item.source.path or "")
                outcomes[index] = _finish(services, reader, item, prepared[index])

        _in_threads(pool, finish, list(same_bytes.values()))
    return [outcomes[index] for index in range(len(read))]


def _in_threads(pool: ThreadPoolExecutor, work: Callable[[T], R], items: list[T]) -> list[R]:
    """`work` over `items` in the pool, results in order; each task runs in a copy of the
    caller's context (context variables, such as a logging context, carry over)."""
    futures = [pool.submit(contextvars.copy_context().run, work, item) for item in items]
    return [future.result() for future in futures]


def _prepare(services: Services, item: _ReadEntry) -> Prepared | Rejection | None:
    """The CPU-bound half (in the image pool, if there is one); None for an unreadable entry."""
    if item.data is None:
        return None
    if services.image_pool:
        return services.image_pool.submit(prepare_or_reject, item.data, item.source,
                                          services.settings).result()
    return prepare_or_reject(item.data, item.source, services.settings)


def _finish(services: Services, reader: S3RangeReader | PrefetchedSpan, item: _ReadEntry,
            prepared: Prepared | Rejection | None) -> Outcome:
    if item.unreadable is not None:
        return _dead_letter_entry(services, reader, item.source, item.entry, item.unreadable)
    assert item.data is not None  # read, or unreadable: never neither
    return ingest_image(item.data, item.source, services, prepared)


def _dead_letter_entry(services: Services, reader: S3RangeReader | PrefetchedSpan,
                       source: ImageSource,
                       entry: ZipEntry, unreadable: Rejected) -> Outcome:
    """Keep an entry we cannot read as its stored bytes, copied server-side (bombs included);
    an image entry also counts as an ImageError of the batch."""
    assert source.origin is not None  # a batch entry always has one
    key = storage.rejected_key(unreadable.reason, source.origin, entry.path)
    start, length = entry_data_range(reader, entry)
    storage.copy_range(services.s3, source.bucket, source.key, start, length,
                       services.settings.dead_letter_bucket, key)
    if not entry.counted:
        return Outcome(entry.path, SKIPPED, unreadable.reason, detail=str(unreadable), keys=[key],
                       origin=source.origin)
    record_rejection(services.api, source.batch_id, entry.path, unreadable.reason,
                     str(unreadable))
    return Outcome(entry.path, DEAD_LETTER, unreadable.reason, detail=str(unreadable),
                   keys=[key], origin=source.origin)


def summarize_batch(s3: Any, api: AnimlApiClient, settings: Settings, batch_id: str
                    ) -> dict[str, Any]:
    """Collect every group's outcomes into the batch report; fail if any group is missing.

    Files that are not images are not in the batch's total, so the web app would never hear of
    them: one batch error says how many there were and why.
    """
    work = settings.batch_work_bucket
    items = storage.get_json(s3, work, storage.manifest_key(batch_id))
    skipped = storage.get_json(s3, work, storage.inspection_key(batch_id))["skipped"]
    images: list[dict[str, Any]] = []
    missing: list[int] = []
    for item in items:
        try:
            images.extend(storage.get_json(s3, work, storage.outcomes_key(batch_id, item["group"])))
        except s3.exceptions.NoSuchKey:
            missing.append(item["group"])
    if missing:
        lost = sum(len(item["entries"]) for item in items if item["group"] in missing)
        raise IncompleteBatch(
            f"{lost} image(s) in {len(missing)} group(s) have no outcome (groups {missing[:10]})"
        )
    not_images = Counter(i["reason"] for i in images if i["outcome"] == SKIPPED)
    if not_images:
        batch_record.record_batch_error(api, s3, settings, batch_id,
                                        reasons.not_images_text(not_images))
    images.extend(
        {"path": s["path"], "outcome": SKIPPED, "reason": s["reason"], "id": None, "md": None}
        for s in skipped
    )
    report: dict[str, Any] = {
        "batch": batch_id,
        "counts": dict(Counter(i["outcome"] for i in images)),
        "reasons": dict(Counter(i["reason"] for i in images if i["reason"])),
        "warnings": dict(Counter(w for i in images for w in i.get("warnings") or [])),
        "images": images,
    }
    storage.put_json(s3, work, storage.report_key(batch_id), report)
    return {"counts": report["counts"], "reasons": report["reasons"],
            "warnings": sum(report["warnings"].values()),
            "report": {"Bucket": work, "Key": storage.report_key(batch_id)}}


def mark_upload_complete(api: AnimlApiClient, s3: Any, settings: Settings, batch_id: str,
                         total: int, at: str) -> dict[str, Any]:
    """uploadComplete and total; an empty batch is also processed and ended at that moment."""
    fields: dict[str, Any] = {"total": total, "uploadComplete": at}
    if total == 0:
        fields.update(processingStart=at, processingEnd=at)
    return batch_record.mark_batch(api, s3, settings, batch_id, **fields)


def mark_batch_status(api: AnimlApiClient, s3: Any, settings: Settings, batch_id: str,
                      field: str, at: str, total: int | None = None) -> dict[str, Any]:
    """One status timestamp, as the ASL's Mark* states name it; uploadComplete carries the
    batch's total too."""
    if field == "uploadComplete":
        if total is None:
            raise ValueError("uploadComplete needs the batch's total")
        return mark_upload_complete(api, s3, settings, batch_id, total, at)
    record = batch_record.mark_batch(api, s3, settings, batch_id, **{field: at})
    if field == "processingEnd":  # this execution completed the batch
        record = batch_record.resolve_execution_failures(s3, settings, batch_id, at)
    return record
