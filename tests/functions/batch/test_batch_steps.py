"""A group of entries worked as one Map item: concurrently, with the outcomes of one at a time."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from animl_local.moto_s3_on_disk import s3_objects_on_disk
from animl_local.standin_api import StandinApi
from functions.archive.zip_reader import ArchiveChanged
from functions.batch import batch_steps
from functions.image.ingest_image import DEAD_LETTER, INGESTED, Services
from functions.image.renditions import DECODE_BYTES_PER_PIXEL
from functions.platform import storage
from functions.platform.budget import ByteBudget
from tests.conftest import create_batch, jpeg_bytes, zip_bytes


def ingest_as_one_group(services: Services, members: dict[str, bytes]) -> list[dict]:
    """A new batch of `members`, inspected and worked as one group."""
    batch_id = create_batch(services.api, serial="CAM-1")
    return ingest_members_as_one_group(services, batch_id, list(members.items()))


def test_entries_with_the_same_bytes_are_recorded_in_entry_order(services: Services,
                                                                 tmp_path: Path) -> None:
    same = jpeg_bytes(tmp_path, seed=7)
    members = {f"copy{i}/IMG.JPG": same for i in range(6)}
    members.update({f"other/IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=20 + i) for i in range(4)})

    rows = ingest_as_one_group(services, members)

    assert [r["path"] for r in rows] == list(members)  # outcomes in entry order
    outcomes = {r["path"]: (r["outcome"], r["reason"]) for r in rows}
    assert outcomes["copy0/IMG.JPG"] == (INGESTED, None)  # the first one, whatever the timing
    assert all(outcomes[f"copy{i}/IMG.JPG"] == (DEAD_LETTER, "DUPLICATE_IMAGE")
               for i in range(1, 6))
    assert all(outcomes[f"other/IMG_{i}.JPG"] == (INGESTED, None) for i in range(4))


def test_a_group_works_up_to_its_concurrency_of_entries_at_once(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    services = replace(services, settings=replace(services.settings, group_concurrency=3))
    standin_api.latency_seconds = 0.2  # every createImage waits: entries overlap their waits
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=40 + i) for i in range(8)}

    rows = ingest_as_one_group(services, members)

    assert [(r["path"], r["outcome"]) for r in rows] == [(p, INGESTED) for p in members]
    assert 2 <= standin_api.most_in_flight <= 3


def test_a_groups_threads_decode_within_its_budget(services: Services, tmp_path: Path) -> None:
    # Photos just over the medium's size decode whole: a budget of one decode lets the four
    # threads hold one at a time.
    one_decode = 1000 * 800 * DECODE_BYTES_PER_PIXEL
    budget = ByteBudget(one_decode)
    services = replace(services, decode_budget=budget,
                       settings=replace(services.settings, group_concurrency=4))
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=60 + i, size=(1000, 800))
               for i in range(6)}

    rows = ingest_as_one_group(services, members)

    assert [(r["path"], r["outcome"]) for r in rows] == [(p, INGESTED) for p in members]
    assert budget.peak_bytes == one_decode and budget.held_bytes == 0


class CountingImagePool(ThreadPoolExecutor):
    """An image pool that notes, as each entry's image work reaches it, how many images the
    stand-in has saved."""

    def __init__(self, saved: Callable[[], int]) -> None:
        super().__init__(max_workers=2)
        self.saved, self.saved_at_submit = saved, []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        self.saved_at_submit.append(self.saved())
        return super().submit(fn, *args, **kwargs)


def test_a_groups_entries_are_saved_while_later_ones_are_still_to_be_prepared(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    members = [(f"IMG_{i}.JPG", jpeg_bytes(tmp_path, seed=110 + i)) for i in range(6)]
    with CountingImagePool(lambda: len(standin_api.store.images(batch_id))) as pool:
        services = replace(services, image_pool=pool,
                           settings=replace(services.settings, group_concurrency=2))
        rows = ingest_members_as_one_group(services, batch_id, members)

    assert [r["outcome"] for r in rows] == [INGESTED] * 6
    # Two entries at a time, each prepared and then saved by one task: the k-th entry's image
    # work starts once k - 1 entries are saved (not after every entry has been prepared).
    assert len(pool.saved_at_submit) == 6
    assert all(saved >= k - 1 for k, saved in enumerate(pool.saved_at_submit))


def zip_with_repeats(members: list[tuple[str, bytes]]) -> bytes:
    """A zip whose entries may repeat a name (zipfile warns, and writes them all)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def ingest_members_as_one_group(services: Services, batch_id: str,
                                members: list[tuple[str, bytes]]) -> list[dict]:
    """Inspect the archive as InspectArchive does, then work its (one) group."""
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=zip_with_repeats(members))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket, key)
    [item] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    batch_steps.ingest_group(services, batch_id, bucket, key, item["group"], item["entries"])
    return storage.get_json(services.s3, services.settings.batch_work_bucket,
                            storage.outcomes_key(batch_id, item["group"]))


def dead_lettered_bytes(services: Services, rows: list[dict]) -> list[bytes]:
    """Each row's own dead-letter object, read back (one object per row, none shared)."""
    [keys] = [[k for row in rows for k in row["keys"]]]
    assert len(set(keys)) == len(keys) == len(rows)
    return [services.s3.get_object(Bucket=services.settings.dead_letter_bucket,
                                   Key=k)["Body"].read() for k in keys]


COLLIDING_NAMES = ["../x.jpg", "x.jpg", "/x.jpg", "C:\\x.jpg"]


def test_names_that_clean_to_one_path_keep_one_dead_letter_object_each(
        services: Services) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    members = [(name, f"not an image {i}".encode()) for i, name in enumerate(COLLIDING_NAMES)]

    rows = ingest_members_as_one_group(services, batch_id, members)

    assert {r["path"] for r in rows} == {"x.jpg"}
    assert [r["reason"] for r in rows] == ["NOT_AN_IMAGE"] * 4
    assert dead_lettered_bytes(services, rows) == [data for _, data in members]


def test_one_name_three_times_with_other_bytes_keeps_three_objects(services: Services) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    members = [("cam/IMG_0001.JPG", f"bad bytes {i}".encode()) for i in range(3)]

    rows = ingest_members_as_one_group(services, batch_id, members)

    assert dead_lettered_bytes(services, rows) == [data for _, data in members]


def test_images_the_api_throws_on_keep_one_object_each(services: Services,
                                                       tmp_path: Path) -> None:
    missing = "batch-00000000-0000-0000-0000-000000000000"  # createImage throws for it
    members = [(f"cam{i}/IMG_0001.JPG", jpeg_bytes(tmp_path, seed=60 + i)) for i in range(4)]

    rows = ingest_members_as_one_group(services, missing, members)

    assert all(r["id"] is None and r["outcome"] == DEAD_LETTER for r in rows)
    assert dead_lettered_bytes(services, rows) == [data for _, data in members]


def test_a_retried_group_finds_its_saved_images_and_records_no_image_error(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    batch_steps.mark_batch_status(services.api, services.s3, services.settings, batch_id,
                                  "uploadComplete", "2024-06-01T12:00:00Z", total=3)
    members = [(f"cam/IMG_{i}.JPG", jpeg_bytes(tmp_path, seed=90 + i)) for i in range(3)]
    first = ingest_members_as_one_group(services, batch_id, members)
    errors = len(standin_api.store.image_errors(batch_id))  # the queue-less inference, once each
    # The attempt ended after createImage but before any outcome was stored (the group's or
    # an entry's, which would let the retry skip the entry): a retry meets its own images.
    work = services.settings.batch_work_bucket
    services.s3.delete_object(Bucket=work, Key=storage.outcomes_key(batch_id, 0))
    stored = services.s3.list_objects_v2(Bucket=work,
                                         Prefix=storage.entry_outcomes_prefix(batch_id, 0))
    assert len(stored["Contents"]) == 3
    for entry_outcome in stored["Contents"]:
        services.s3.delete_object(Bucket=work, Key=entry_outcome["Key"])
    [item] = storage.get_json(services.s3, work, storage.manifest_key(batch_id))
    batch_steps.ingest_group(services, batch_id, services.settings.ingestion_bucket,
                             f"{batch_id}.zip", 0, item["entries"])

    again = storage.get_json(services.s3, work, storage.outcomes_key(batch_id, 0))
    assert [(r["outcome"], r["id"]) for r in again] == [(INGESTED, r["id"]) for r in first]
    assert len(standin_api.store.image_errors(batch_id)) == errors  # no E11000 recorded
    assert len(standin_api.store.images(batch_id)) == 3


def test_one_name_twice_with_the_same_bytes_is_one_image_and_one_duplicate(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    same = jpeg_bytes(tmp_path, seed=95)
    members = [("cam/IMG_0001.JPG", same), ("cam/IMG_0001.JPG", same)]

    rows = ingest_members_as_one_group(services, batch_id, members)

    assert [(r["outcome"], r["reason"]) for r in rows] == [
        (INGESTED, None), (DEAD_LETTER, "DUPLICATE_IMAGE")]
    assert len(standin_api.store.images(batch_id)) == 1
    assert sum("E11000" in e["error"] for e in standin_api.store.image_errors(batch_id)) == 1
def summarized_rows(services: Services, members: list[tuple[str, bytes]], max_entries: int
                    ) -> tuple[str, list[dict]]:
    """The batch report's rows for an archive of `members`, in groups of `max_entries`."""
    services = replace(services, settings=replace(services.settings,
                                                  group_max_entries=max_entries))
    batch_id = create_batch(services.api, serial="CAM-1")
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=zip_with_repeats(members))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket, key)
    items = storage.get_json(services.s3, services.settings.batch_work_bucket,
                             storage.manifest_key(batch_id))
    assert len(items) == -(-len(members) // max_entries)
    for item in reversed(items):  # the later group first: order must not matter
        batch_steps.ingest_group(services, batch_id, bucket, key, item["group"],
                                 item["entries"])
    batch_steps.summarize_batch(services.s3, services.api, services.settings, batch_id)
    report = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.report_key(batch_id))
    return batch_id, report["images"]


def test_one_name_twice_with_the_same_bytes_reads_the_same_across_a_group_boundary(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    def twice(seed: int) -> list[tuple[str, bytes]]:  # other bytes per batch: one project
        same = jpeg_bytes(tmp_path, seed=seed)
        return [("cam/IMG_0001.JPG", same), ("cam/IMG_0001.JPG", same)]

    _, in_one = summarized_rows(services, twice(95), max_entries=2)
    members = twice(96)
    same = members[0][1]
    batch_id, across = summarized_rows(services, members, max_entries=1)  # a boundary between

    def told(rows: list[dict]) -> list[tuple]:
        return [(r["path"], r["outcome"], r["reason"], r["id"] == rows[0]["id"]) for r in rows]

    assert told(across) == told(in_one)
    assert [(r["outcome"], r["reason"]) for r in across] == [
        (INGESTED, None), (DEAD_LETTER, "DUPLICATE_IMAGE")]
    assert len(standin_api.store.images(batch_id)) == 1
    # The duplicate is kept in dead-letter, as within a group, with its own bytes.
    assert dead_lettered_bytes(services, across[1:]) == [same]
    assert across[1]["keys"][0].startswith(f"DUPLICATE_IMAGE/{across[1]['id']}/")


def inspected(services: Services, members: dict[str, bytes], max_entries: int = 50
              ) -> tuple[str, str, dict[str, Any], list[dict[str, Any]]]:
    """(batch, key, InspectArchive's result, the Map's items) for a fresh upload."""
    settings = replace(services.settings, group_max_entries=max_entries)
    batch_id = create_batch(services.api, serial="CAM-1")
    key = f"{batch_id}.zip"
    services.s3.put_object(Bucket=settings.ingestion_bucket, Key=key, Body=zip_bytes(members))
    result = batch_steps.inspect_batch_archive(services.s3, settings, batch_id,
                                               settings.ingestion_bucket, key)
    items = storage.get_json(services.s3, settings.batch_work_bucket,
                             storage.manifest_key(batch_id))
    return batch_id, key, result, items


def work(services: Services, batch_id: str, key: str, item: dict[str, Any], etag: str) -> Any:
    return batch_steps.ingest_group(services, batch_id, services.settings.ingestion_bucket, key,
                                    item["group"], item["entries"], etag)


def test_a_group_of_an_archive_replaced_after_inspection_fails_with_the_reason_recorded(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    first = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=60 + i) for i in range(4)}
    batch_id, key, result, items = inspected(services, first, max_entries=2)
    etag = result["archive"]["ETag"]
    assert work(services, batch_id, key, items[0], etag)["images"] == 2  # before the change
    services.s3.put_object(Bucket=services.settings.ingestion_bucket, Key=key,
                           Body=zip_bytes({"IMG_0.JPG": jpeg_bytes(tmp_path, seed=99)}))

    with pytest.raises(ArchiveChanged, match="The archive changed during ingestion"):
        work(services, batch_id, key, items[1], etag)

    # The group done stays done (whole images of the first upload); the other has no outcome
    # (the execution fails), and the batch says why, once.
    images = standin_api.store.images(batch_id)
    assert sorted(i["path"] for i in images) == ["IMG_0.JPG", "IMG_1.JPG"]
    with pytest.raises(services.s3.exceptions.NoSuchKey):
        storage.get_json(services.s3, services.settings.batch_work_bucket,
                         storage.outcomes_key(batch_id, items[1]["group"]))
    with pytest.raises(ArchiveChanged):
        work(services, batch_id, key, items[1], etag)  # the Map's retry: the same error
    [error] = standin_api.store.batch(batch_id)["errors"]
    assert error["error"].startswith("The archive changed during ingestion")


def test_outcomes_stored_from_another_upload_are_not_reused(services: Services,
                                                          tmp_path: Path) -> None:
    batch_id, key, result, [item] = inspected(
        services, {"IMG_0.JPG": jpeg_bytes(tmp_path, seed=70)})
    work(services, batch_id, key, item, result["archive"]["ETag"])
    again = work(services, batch_id, key, item, result["archive"]["ETag"])
    assert again["reused"]  # the same upload: a re-drive does not work it again

    # A second upload under the same batch id, whose group has as many entries.
    bucket = services.settings.ingestion_bucket
    services.s3.put_object(Bucket=bucket, Key=key,
                           Body=zip_bytes({"IMG_0.JPG": jpeg_bytes(tmp_path, seed=71)}))
    second = batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket,
                                               key)
    [item] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    worked = work(services, batch_id, key, item, second["archive"]["ETag"])
    assert "reused" not in worked and worked["images"] == 1


@pytest.mark.slow  # 48 MiB inflated under tracemalloc
def test_a_group_holds_its_byte_budget_of_inflated_entries_not_the_whole_group(
        services: Services) -> None:
    # Six entries that each inflate to 8 MiB (about 1 MiB deflated: under the bomb ratio): not
    # images, so each one is read, refused and kept. With a budget of one entry, one at a time.
    two_letters = bytes.maketrans(bytes(range(256)), b"ab" * 128)
    members = {f"IMG_{i}.JPG": os.urandom(8 * 1024 * 1024).translate(two_letters)
               for i in range(6)}
    batch_id, key, result, [item] = inspected(services, members)
    budget = replace(services, settings=replace(services.settings,
                                                group_max_inflated_bytes=8 * 1024 * 1024))
    tracemalloc.start()
    try:
        counts = work(budget, batch_id, key, item, result["archive"]["ETag"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert counts["images"] == 6 and counts[DEAD_LETTER] == 6
    # moto runs in this process (its copies of each dead-lettered object are counted too): one
    # run at a time peaks near 64 MiB here, all six at once near 250 MiB.
    assert peak < 128 * 1024 * 1024


def test_entries_whose_directory_understates_them_are_kept_as_their_stored_bytes_unread(
        services: Services, tmp_path: Path) -> None:
    # Both claim 1,000 bytes: one stored and 3 MiB (more than the limit, never fetched), one
    # deflated that inflates to 32 MiB (fetched, inflated only to the limit). Each is kept as
    # its stored bytes by a server-side copy; the good photo after them is ingested.
    limit = 1024 * 1024
    small = replace(services, settings=replace(services.settings, max_image_bytes=limit))
    lie = os.urandom(3 * limit)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("stored.jpg", lie, zipfile.ZIP_STORED)
        zf.writestr("deflated.jpg", bytes(32 * limit), zipfile.ZIP_DEFLATED)
        zf.writestr("good.jpg", jpeg_bytes(tmp_path, seed=5), zipfile.ZIP_DEFLATED)
        infos = {i.filename: i for i in zf.infolist()}
    data = bytearray(buffer.getvalue())
    stored_bytes = {}
    for name in ("stored.jpg", "deflated.jpg"):
        info = infos[name]
        name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_length + extra_length
        stored_bytes[name] = bytes(data[start:start + info.compress_size])
    # The central directory's records, in entry order, from the end record's offset.
    record = struct.unpack_from("<L", data, data.rindex(b"PK\x05\x06") + 16)[0]
    for name in ("stored.jpg", "deflated.jpg"):
        assert data[record + 46:record + 46 + len(name)] == name.encode()
        struct.pack_into("<L", data, record + 24, 1000)  # uncompressed size: "1,000 bytes"
        record += 46 + sum(struct.unpack_from("<HHH", data, record + 28))
    assert stored_bytes["stored.jpg"] == lie
    batch_id = create_batch(small.api, serial="CAM-1")
    bucket, key = small.settings.ingestion_bucket, f"{batch_id}.zip"
    small.s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    result = batch_steps.inspect_batch_archive(small.s3, small.settings, batch_id, bucket, key)
    [item] = storage.get_json(small.s3, small.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    fetched: list[int] = []

    def count(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        fetched.append(parsed.get("ContentLength") or 0)

    small.s3.meta.events.register("after-call.s3.GetObject", count)
    try:
        work(small, batch_id, key, item, result["archive"]["ETag"])
    finally:
        small.s3.meta.events.unregister("after-call.s3.GetObject", count)

    rows = {r["path"]: r for r in storage.get_json(
        small.s3, small.settings.batch_work_bucket, storage.outcomes_key(batch_id, 0))}
    assert rows["good.jpg"]["outcome"] == INGESTED
    for name, stored in stored_bytes.items():
        assert (rows[name]["outcome"], rows[name]["reason"]) == (DEAD_LETTER, "IMAGE_TOO_LARGE")
        [kept_key] = rows[name]["keys"]
        kept = small.s3.get_object(Bucket=small.settings.dead_letter_bucket, Key=kept_key)
        assert kept["Body"].read() == stored
    assert sum(fetched) < limit  # the stored 3 MiB never came to the worker


def test_an_entry_with_an_undecodable_name_is_ingested_and_its_raw_name_noted(
        services: Services, tmp_path: Path) -> None:
    # A marker no compressed byte run will repeat, replaced in the two headers that name it.
    data = zip_bytes({"cam/\u00f1QQ_NAME_QQ.JPG": jpeg_bytes(tmp_path, seed=80)}).replace(
        b"QQ_NAME_QQ", b"\xff\xfe_NAME_QQ")
    batch_id = create_batch(services.api, serial="CAM-1")
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=data)
    result = batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket,
                                               key)
    [item] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.manifest_key(batch_id))
    work(services, batch_id, key, item, result["archive"]["ETag"])
    [row] = storage.get_json(services.s3, services.settings.batch_work_bucket,
                             storage.outcomes_key(batch_id, item["group"]))
    assert (row["outcome"], row["reason"], row["detail"]) == (INGESTED, None, None)
    assert row["path"] == "cam/\u00f1\ufffd\ufffd_NAME_QQ.JPG"
    assert batch_steps.undecodable_name_note(
        ("cam/\u00f1".encode() + b"\xff\xfe_NAME_QQ.JPG").hex()) in row["warnings"]


def test_a_dead_letter_copy_pinned_to_another_upload_is_refused(services: Services) -> None:
    bucket = services.settings.ingestion_bucket
    with s3_objects_on_disk():
        services.s3.put_object(Bucket=bucket, Key="a.zip", Body=b"first upload")
        old = services.s3.head_object(Bucket=bucket, Key="a.zip")["ETag"]
        services.s3.put_object(Bucket=bucket, Key="a.zip", Body=b"second upload")
        with pytest.raises(ClientError) as refused:
            storage.copy_range(services.s3, bucket, "a.zip", 0, 5,
                               services.settings.dead_letter_bucket, "kept", source_etag=old)
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    listed = services.s3.list_objects_v2(Bucket=services.settings.dead_letter_bucket)
    assert "Contents" not in listed
    assert not services.s3.list_multipart_uploads(
        Bucket=services.settings.dead_letter_bucket).get("Uploads")


def test_a_summary_of_an_upload_whose_manifest_was_replaced_fails_as_archive_changed(
        services: Services, tmp_path: Path) -> None:
    batch_id, key, result, [item] = inspected(
        services, {"IMG_0.JPG": jpeg_bytes(tmp_path, seed=72)})
    first_etag = result["archive"]["ETag"]
    work(services, batch_id, key, item, first_etag)
    services.s3.put_object(Bucket=services.settings.ingestion_bucket, Key=key,
                           Body=zip_bytes({"IMG_9.JPG": jpeg_bytes(tmp_path, seed=73)}))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id,
                                      services.settings.ingestion_bucket, key)  # the second's
    with pytest.raises(ArchiveChanged, match="The archive changed during ingestion"):
        batch_steps.summarize_batch(services.s3, services.api, services.settings, batch_id,
                                    first_etag)


def test_an_archive_cut_short_is_ingested_from_its_local_headers_and_the_batch_says_so(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=90 + i) for i in range(3)}
    whole = zip_bytes(members)
    batch_id = create_batch(services.api, serial="CAM-1")
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    # An interrupted copy: the end of the central directory is missing.
    services.s3.put_object(Bucket=bucket, Key=key, Body=whole[:len(whole) - 40])
    result = batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket,
                                               key)
    for item in storage.get_json(services.s3, services.settings.batch_work_bucket,
                                 storage.manifest_key(batch_id)):
        work(services, batch_id, key, item, result["archive"]["ETag"])
    summary = batch_steps.summarize_batch(services.s3, services.api, services.settings,
                                          batch_id, result["archive"]["ETag"])

    assert result["total"] == 3 and summary["counts"] == {INGESTED: 3}
    [error] = standin_api.store.batch(batch_id)["errors"]
    assert "3 entries read from local headers" in error["error"]
