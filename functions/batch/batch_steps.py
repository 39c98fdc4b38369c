"""The steps of the IngestBatch state machine, as plain functions over explicit clients."""

from __future__ import annotations

import contextvars
import posixpath
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from functions.archive.manifest import manifest_items
from functions.archive.zip_reader import (
    ARCHIVE_CHANGED,
    ArchiveChanged,
    EntryLimits,
    PrefetchedSpan,
    S3RangeReader,
    ZipEntry,
    entry_data_range,
    inspect_archive,
    pinned_to,
    prefetch_group,
    quoted_etag,
    read_entry,
)
from functions.batch import batch_record
from functions.image.ingest_image import (
    DEAD_LETTER,
    INGESTED,
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


def inspect_batch_archive(s3: Any, settings: Settings, batch_id: str, bucket: str, key: str,
                          etag: str | None = None) -> dict[str, Any]:
    """Read the archive's directory, write the manifest and return the counts for the batch.

    `etag`: the upload that started the execution (from its S3 event); if the object is no longer
    that upload, ArchiveChanged. The ETag read here is returned in `archive`, and every later read
    of the batch (the Map's items) is pinned to it.
    """
    reader = S3RangeReader(s3, bucket, key, etag=etag)
    limits = EntryLimits(settings.max_image_bytes, settings.max_compression_ratio,
                         settings.max_batch_uncompressed_bytes)
    listing = inspect_archive(reader, limits)
    items = manifest_items(listing, settings.group_max_entries, settings.group_max_bytes)
    archive = {"Bucket": bucket, "Key": key, "ETag": reader.etag}
    work = settings.batch_work_bucket
    storage.put_json(s3, work, storage.manifest_key(batch_id), items)
    storage.put_json(s3, work, storage.inspection_key(batch_id),
                     {"skipped": listing.skipped, "archive": archive,
                      "recovered": listing.recovered})
    return {
        "total": len(listing.images),
        "groups": len(items),
        "notImages": len(listing.others),
        "skipped": len(listing.skipped),
        "archiveBytes": reader.size,
        "archive": archive,
        "recovered": listing.recovered,
        "manifest": {"Bucket": work, "Key": storage.manifest_key(batch_id)},
    }


def ingest_group(services: Services, batch_id: str, bucket: str, key: str, group: int,
                 entries: list[dict[str, Any]], etag: str | None = None) -> dict[str, Any]:
    """Ingest one Map item's entries; write their outcomes to S3 and return the counts.

    Every read is pinned to `etag` (the upload InspectArchive read): if the object changed,
    ArchiveChanged, recorded once as a batch error. Each entry's outcome is stored as soon as
    it is known, so a retried or re-driven group works only the entries that have none from
    the same upload (an entry is never recorded twice); once all have one, the group's
    outcomes object (what SummarizeOutcomes reads) is written. A group whose outcomes object
    exists from the same upload is not worked again.
    """
    outcomes_key = storage.outcomes_key(batch_id, group)
    stored = _stored_outcomes(services, outcomes_key, len(entries), etag)
    if stored is not None:
        return {"group": group, "images": len(stored), "reused": True,
                **Counter(row["outcome"] for row in stored)}
    lookup = ImageLookup(_batch_project(services, batch_id), _is_retry(services, batch_id, group))
    group_entries = [ZipEntry.from_item(item) for item in entries]
    finished = _finished_entries(services, batch_id, group, group_entries, etag)
    todo = [index for index in range(len(group_entries)) if index not in finished]
    try:
        if todo:
            _ingest_unfinished(services, batch_id, bucket, key, group, etag, lookup,
                               group_entries, todo, finished)
    except ArchiveChanged as changed:
        batch_record.record_batch_error(services.api, services.s3, services.settings, batch_id,
                                        str(changed))
        raise
    rows = [finished[index] for index in range(len(group_entries))]
    storage.put_json(services.s3, services.settings.batch_work_bucket, outcomes_key, rows)
    counts = Counter(row["outcome"] for row in rows)
    return {"group": group, "images": len(rows), "resumed": len(group_entries) - len(todo),
            **counts}


def _ingest_unfinished(services: Services, batch_id: str, bucket: str, key: str, group: int,
                       etag: str | None, lookup: ImageLookup, entries: list[ZipEntry],
                       todo: list[int], finished: dict[int, dict[str, Any]]) -> None:
    """Work the group's entries at `todo` (those without an outcome), storing each one's
    outcome as soon as it is known (and adding it to `finished`)."""
    wanted = [entries[index] for index in todo]
    archive = S3RangeReader(services.s3, bucket, key, etag=etag)
    # Neighbouring entries come in one ranged GET (bounded: a group is at most this many bytes).
    reader = prefetch_group(archive, wanted, 2 * services.settings.group_max_bytes)
    start = 0
    for run in _read_within_budget(services, reader, batch_id, bucket, key, wanted, lookup):
        def record(position: int, outcome: Outcome, first: int = start) -> None:
            row = {**outcome.to_dict(), ARCHIVE_ETAG: archive.etag}
            index = todo[first + position]
            storage.put_json(services.s3, services.settings.batch_work_bucket,
                             storage.entry_outcome_key(batch_id, group, index), row)
            finished[index] = row

        _ingest_entries(services, reader, run, record)
        start += len(run)
        del run  # let the run's bytes go before the next run is read


@dataclass(frozen=True)
class ImageLookup:
    """Where a group's images are found once saved (ImageSource's fields of the same names)."""

    project_id: str | None = None
    retried: bool = False


def _is_retry(services: Services, batch_id: str, group: int) -> bool:
    """False on a group's first attempt (which marks it begun), True on a later one."""
    work, marker = services.settings.batch_work_bucket, storage.attempt_key(batch_id, group)
    try:
        services.s3.get_object(Bucket=work, Key=marker)
    except services.s3.exceptions.NoSuchKey:
        services.s3.put_object(Bucket=work, Key=marker, Body=b"")
        return False
    return True


def _batch_project(services: Services, batch_id: str) -> str | None:
    """The batch's project (updateBatch answered it at MarkUploadComplete): where its images
    are `<project>:<md5>`, looked up after a lost answer and on a retry."""
    record = batch_record.read_batch_record(services.s3, services.settings, batch_id)
    project: str | None = record.get("projectId")
    return project


# Each stored outcome names the upload it came from: another upload's are never reused.
ARCHIVE_ETAG = "archiveETag"


def _stored_outcomes(services: Services, key: str, expected: int, etag: str | None
                     ) -> list[dict[str, Any]] | None:
    try:
        rows = storage.get_json(services.s3, services.settings.batch_work_bucket, key)
    except services.s3.exceptions.NoSuchKey:
        return None
    same_upload = etag is None or all(row.get(ARCHIVE_ETAG) == quoted_etag(etag) for row in rows)
    return rows if len(rows) == expected and same_upload else None


def _finished_entries(services: Services, batch_id: str, group: int, entries: list[ZipEntry],
                      etag: str | None) -> dict[int, dict[str, Any]]:
    """Outcomes an earlier attempt of this group stored, by entry index (one whose path is
    not the entry's, or from another upload, is not this entry's: it is worked again)."""
    work = services.settings.batch_work_bucket
    pages = services.s3.get_paginator("list_objects_v2").paginate(
        Bucket=work, Prefix=storage.entry_outcomes_prefix(batch_id, group))
    finished: dict[int, dict[str, Any]] = {}
    for listed in (obj for page in pages for obj in page.get("Contents", [])):
        stem = listed["Key"].rsplit("/", 1)[-1].removesuffix(".json")
        index = int(stem) if stem.isdigit() else -1
        if 0 <= index < len(entries):
            row = storage.get_json(services.s3, work, listed["Key"])
            same_upload = etag is None or row.get(ARCHIVE_ETAG) == quoted_etag(etag)
            if row.get("path") == entries[index].path and same_upload:
                finished[index] = row
    return finished


@dataclass(frozen=True)
class _ReadEntry:
    source: ImageSource
    entry: ZipEntry
    data: bytes | None = None
    unreadable: Rejected | None = None  # then it is dead-lettered as its stored bytes


def _read_within_budget(services: Services, reader: S3RangeReader | PrefetchedSpan,
                        batch_id: str, bucket: str, key: str, entries: list[ZipEntry],
                        lookup: ImageLookup = ImageLookup()) -> Iterator[list[_ReadEntry]]:
    """The group's entries read in runs whose inflated bytes (counted as read, not as the
    directory claims) stay within `group_max_inflated_bytes`, plus at most one entry: a run is
    worked and let go before the next is read."""
    run: list[_ReadEntry] = []
    held = 0
    for entry in entries:
        item = _read_entry(services, reader, batch_id, bucket, key, entry, lookup)
        run.append(item)
        held += len(item.data or b"")
        if held >= services.settings.group_max_inflated_bytes:
            yield run
            run, held = [], 0
    if run:
        yield run


def _read_entry(services: Services, reader: S3RangeReader | PrefetchedSpan, batch_id: str,
                bucket: str, key: str, entry: ZipEntry,
                lookup: ImageLookup = ImageLookup()) -> _ReadEntry:
    source = ImageSource(
        file_name=posixpath.basename(entry.path), bucket=bucket, key=key, batch_id=batch_id,
        path=entry.path, origin=storage.entry_origin(batch_id, entry.header_offset),
        project_id=lookup.project_id, retried=lookup.retried,
    )
    try:
        return _ReadEntry(source, entry,
                          data=read_entry(reader, entry, services.settings.max_image_bytes))
    except Rejected as unreadable:
        return _ReadEntry(source, entry, unreadable=unreadable)


def _ingest_entries(services: Services, reader: S3RangeReader | PrefetchedSpan,
                    read: list[_ReadEntry], record: Callable[[int, Outcome], None]
                    ) -> list[Outcome]:
    """Each entry's outcome, in entry order, with up to `group_concurrency` entries at once;
    `record(position, outcome)` is called as each one is known.

    Every entry is tried even when another fails (the pool finishes its work before the first
    failure is raised), so a retry has as little as possible left to do.

    A group's time is mostly waiting (createImage, S3 writes), and Pillow releases the GIL while
    it decodes, so threads hide the waits and use every vCPU. Each entry is prepared and
    finished by one task, so one entry's image work overlaps another's waits (preparing them
    all first left the image work idle while they were finished, and the rest idle before).
    Entries with the same bytes are worked one after another in entry order, so which of
    them is the duplicate never depends on timing.
    """
    same_bytes: dict[bytes | int, list[int]] = {}
    for index, item in enumerate(read):  # an unreadable entry is its own
        same_bytes.setdefault(index if item.data is None else item.data, []).append(index)
    outcomes: dict[int, Outcome] = {}

    def work(indices: list[int]) -> None:
        paths: set[str] = set()
        for index in indices:
            item = read[index]
            prepared = _prepare(services, item)
            if isinstance(prepared, Prepared) and item.source.path in paths:
                # The same name with the same bytes again: the earlier entry is the image.
                item = replace(item, source=replace(item.source, repeats_earlier_entry=True))
            paths.add(item.source.path or "")
            outcomes[index] = _finish(services, reader, item, prepared)
            record(index, outcomes[index])

    with ThreadPoolExecutor(max_workers=services.settings.group_concurrency) as pool:
        _in_threads(pool, work, list(same_bytes.values()))
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
    return prepare_or_reject(item.data, item.source, services.settings, services.decode_budget)


def _finish(services: Services, reader: S3RangeReader | PrefetchedSpan, item: _ReadEntry,
            prepared: Prepared | Rejection | None) -> Outcome:
    if item.unreadable is not None:
        outcome = _dead_letter_entry(services, reader, item.source, item.entry, item.unreadable)
    else:
        assert item.data is not None  # read, or unreadable: never neither
        outcome = ingest_image(item.data, item.source, services, prepared)
    if item.entry.raw_name:
        outcome.warnings.append(undecodable_name_note(item.entry.raw_name))
    return outcome


def undecodable_name_note(raw_name: str) -> str:
    return ("the entry's name is not the UTF-8 its flag says; shown with replacement "
            f"characters, raw bytes (hex): {raw_name}")


def _dead_letter_entry(services: Services, reader: S3RangeReader | PrefetchedSpan,
                       source: ImageSource,
                       entry: ZipEntry, unreadable: Rejected) -> Outcome:
    """Keep an entry we cannot read as its stored bytes, copied server-side (bombs included);
    an image entry also counts as an ImageError of the batch."""
    assert source.origin is not None  # a batch entry always has one
    key = storage.rejected_key(unreadable.reason, source.origin, entry.path)
    start, length = entry_data_range(reader, entry)
    with pinned_to(source.key, reader.etag):  # the stored bytes of the upload that was read
        storage.copy_range(services.s3, source.bucket, source.key, start, length,
                           services.settings.dead_letter_bucket, key, source_etag=reader.etag)
    if not entry.counted:
        return Outcome(entry.path, SKIPPED, unreadable.reason, detail=str(unreadable), keys=[key],
                       origin=source.origin)
    record_rejection(services.api, source, unreadable.reason, str(unreadable))
    return Outcome(entry.path, DEAD_LETTER, unreadable.reason, detail=str(unreadable),
                   keys=[key], origin=source.origin)


def summarize_batch(s3: Any, api: AnimlApiClient, settings: Settings, batch_id: str,
                    etag: str | None = None) -> dict[str, Any]:
    """Collect every group's outcomes into the batch report; fail if any group is missing.

    Files that are not images are not in the batch's total, so the web app would never hear of
    them: one batch error says how many there were and why. `etag`: the upload this execution
    inspected; ArchiveChanged if a newer upload of the batch has been inspected since.
    """
    work = settings.batch_work_bucket
    items = storage.get_json(s3, work, storage.manifest_key(batch_id))
    inspection = storage.get_json(s3, work, storage.inspection_key(batch_id))
    skipped = inspection["skipped"]
    inspected = (inspection.get("archive") or {}).get("ETag")
    if etag and inspected and quoted_etag(etag) != inspected:
        # A newer upload of the batch was inspected since: the manifest is its execution's.
        raise ArchiveChanged(f"{ARCHIVE_CHANGED}: the batch's manifest is now that of the upload "
                             f"with ETag {inspected}, ingested by its own execution")
    images, missing = _stored_group_outcomes(s3, settings, batch_id, items, inspected)
    if missing:
        raise IncompleteBatch(no_outcome_text(items, missing))
    images = _repeats_across_groups(s3, settings, images)
    if inspection.get("recovered"):  # an archive without its central directory
        batch_record.record_batch_error(api, s3, settings, batch_id, inspection["recovered"])
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


def _repeats_across_groups(s3: Any, settings: Settings, images: list[dict[str, Any]]
                           ) -> list[dict[str, Any]]:
    """The same path with the same bytes twice in the archive is one image and its duplicate,
    wherever the group boundary falls. Within a group the worker tells them apart (the later
    entry is dead-lettered as DUPLICATE_IMAGE); in two groups each found the one image its
    own, so here (rows in archive order) the later one is reported and dead-lettered as the
    duplicate, as within a group: its serving original is copied to dead-letter (the same
    bytes; server-side, idempotent)."""
    seen: set[tuple[str, str]] = set()
    reported = []
    for row in images:
        identity = (row["path"], row.get("id") or "")
        if row["outcome"] == INGESTED and identity in seen:
            row = _as_repeat(s3, settings, row)
        elif row["outcome"] == INGESTED:
            seen.add(identity)
        reported.append(row)
    return reported


def _as_repeat(s3: Any, settings: Settings, row: dict[str, Any]) -> dict[str, Any]:
    original = row["keys"][0]  # storage.RENDITIONS: the original first
    key = storage.dead_letter_key(reasons.DUPLICATE_IMAGE, row["id"], row["origin"],
                                  posixpath.basename(row["path"]))
    s3.copy_object(Bucket=settings.dead_letter_bucket, Key=key,
                   CopySource={"Bucket": settings.serving_bucket, "Key": original})
    detail = (f"the archive has an earlier entry with this path and the same bytes: "
              f"image {row['id']}")
    return {**row, "outcome": DEAD_LETTER, "reason": reasons.DUPLICATE_IMAGE,
            "detail": detail, "keys": [key]}


def _stored_group_outcomes(s3: Any, settings: Settings, batch_id: str,
                           items: list[dict[str, Any]], etag: str | None
                           ) -> tuple[list[dict[str, Any]], list[int]]:
    """The outcomes of the manifest's groups that have them (from the upload with `etag`), and
    the groups that have none."""
    images: list[dict[str, Any]] = []
    missing: list[int] = []
    for item in items:
        try:
            rows = storage.get_json(s3, settings.batch_work_bucket,
                                    storage.outcomes_key(batch_id, item["group"]))
        except s3.exceptions.NoSuchKey:
            rows = None
        if rows is None or (etag and any(row.get(ARCHIVE_ETAG) != etag for row in rows)):
            missing.append(item["group"])  # none yet, or another upload's
        else:
            images.extend(rows)
    return images, missing


def no_outcome_text(items: list[dict[str, Any]], missing: list[int]) -> str:
    lost = sum(len(item["entries"]) for item in items if item["group"] in missing)
    return f"{lost} image(s) in {len(missing)} group(s) have no outcome (groups {missing[:10]})"


def missing_outcomes(s3: Any, settings: Settings, batch_id: str) -> str | None:
    """What a failed execution left undone: "N image(s) in M group(s) have no outcome", from
    the manifest and the outcomes stored so far; None when every group has its outcomes, or
    the batch has no manifest yet."""
    work = settings.batch_work_bucket
    try:
        items = storage.get_json(s3, work, storage.manifest_key(batch_id))
        inspection = storage.get_json(s3, work, storage.inspection_key(batch_id))
    except s3.exceptions.NoSuchKey:
        return None
    etag = (inspection.get("archive") or {}).get("ETag")
    _, missing = _stored_group_outcomes(s3, settings, batch_id, items, etag)
    return no_outcome_text(items, missing) if missing else None


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
        _report_resolved_errors(s3, settings, batch_id, record.get("resolvedErrors") or [])
    return record


def _report_resolved_errors(s3: Any, settings: Settings, batch_id: str,
                            resolved: list[dict[str, Any]]) -> None:
    """The batch report says which earlier failures the completed batch resolved (the API
    keeps them among the batch's errors, with no way to mark one resolved)."""
    if not resolved:
        return
    work, key = settings.batch_work_bucket, storage.report_key(batch_id)
    try:
        report = storage.get_json(s3, work, key)
    except s3.exceptions.NoSuchKey:
        return  # an empty batch ends without a report
    if report.get("resolvedErrors") != resolved:
        storage.put_json(s3, work, key, {**report, "resolvedErrors": resolved})
