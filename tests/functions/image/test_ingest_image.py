"""The unit of work for one image, against moto S3 and the stand-in API."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.image.ingest_image import DEAD_LETTER, INGESTED, ImageSource, Services, ingest_image
from functions.image.single_image import ingest_single_image
from functions.platform import reasons, storage
from tests.conftest import create_batch, jpeg_bytes


def keys(services: Services, bucket: str) -> list[str]:
    listed = services.s3.list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def batch_source(batch_id: str, path: str = "cam/IMG_1.JPG", offset: int = 0) -> ImageSource:
    return ImageSource(file_name=path.rsplit("/", 1)[-1], bucket="in", key=f"{batch_id}.zip",
                       batch_id=batch_id, path=path,
                       origin=storage.entry_origin(batch_id, offset))


def test_a_good_image_gets_a_record_and_three_serving_copies(services: Services,
                                                              tmp_path: Path) -> None:
    batch_id = create_batch(services.api)
    data = jpeg_bytes(tmp_path, serial="CAM-1")
    outcome = ingest_image(data, batch_source(batch_id), services)

    assert (outcome.outcome, outcome.reason) == (INGESTED, None)
    assert outcome.id == f"default_project:{outcome.md['Hash']}"
    assert outcome.md["FileName"] == "IMG_1.jpg"  # extension lower-cased, as the old stack did
    assert outcome.md["SerialNumber"] == "CAM-1"
    assert outcome.md["DateTimeOriginal"] == "2024-06-01T12:00:00"
    assert keys(services, services.settings.serving_bucket) == sorted(
        f"{r}/{outcome.id}-{r}.jpg" for r in ("original", "medium", "small"))
    head = services.s3.head_object(Bucket=services.settings.serving_bucket,
                                   Key=f"original/{outcome.id}-original.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert keys(services, services.settings.dead_letter_bucket) == []


def test_an_api_validation_error_dead_letters_under_the_error_text(services: Services,
                                                                    tmp_path: Path) -> None:
    batch_id = create_batch(services.api)
    outcome = ingest_image(jpeg_bytes(tmp_path, serial=None), batch_source(batch_id), services)
    assert (outcome.outcome, outcome.reason) == (DEAD_LETTER, "Unknown Serial Number")
    assert keys(services, services.settings.dead_letter_bucket) == [
        f"Unknown Serial Number/{outcome.id}/{batch_id}/0/IMG_1.JPG"]
    assert keys(services, services.settings.serving_bucket) == []


@pytest.mark.parametrize("copies_left", [0, 1, 2, 3])
def test_running_the_same_image_again_converges(services: Services, tmp_path: Path,
                                                copies_left: int) -> None:
    batch_id = create_batch(services.api)
    data = jpeg_bytes(tmp_path)
    first = ingest_image(data, batch_source(batch_id), services)
    # A retry after a crash after createImage and after `copies_left` of the three copies.
    for key in keys(services, services.settings.serving_bucket)[copies_left:]:
        services.s3.delete_object(Bucket=services.settings.serving_bucket, Key=key)
    again = ingest_image(data, batch_source(batch_id), services)

    assert first.outcome == again.outcome == INGESTED
    assert first.id == again.id
    assert len(keys(services, services.settings.serving_bucket)) == 3
    assert keys(services, services.settings.dead_letter_bucket) == []


def test_the_same_bytes_under_another_name_is_a_duplicate(services: Services,
                                                          tmp_path: Path) -> None:
    batch_id = create_batch(services.api)
    data = jpeg_bytes(tmp_path)
    ingest_image(data, batch_source(batch_id, "a/IMG_1.JPG"), services)
    duplicate = ingest_image(data, batch_source(batch_id, "b/IMG_1.JPG"), services)
    assert (duplicate.outcome, duplicate.reason) == (DEAD_LETTER, reasons.DUPLICATE_IMAGE)


def test_a_thrown_api_error_dead_letters_under_unknown_id(services: Services,
                                                          standin_api, tmp_path: Path) -> None:
    missing = "batch-00000000-0000-0000-0000-000000000000"
    outcome = ingest_image(jpeg_bytes(tmp_path), batch_source(missing), services)
    thrown = "Cannot read properties of null (reading 'projectId')"
    assert (outcome.outcome, outcome.reason) == (DEAD_LETTER, thrown)
    [key] = keys(services, services.settings.dead_letter_bucket)
    assert key == f"{thrown}/UNKNOWN_ID/{missing}/0/IMG_1.JPG"
    # The service records an ImageError for it before it throws.
    [error] = standin_api.store.image_errors(missing)
    assert (error["path"], error["error"]) == ("cam/IMG_1.JPG", thrown.lower())


def test_a_saved_image_whose_inference_request_failed_is_ingested_with_a_warning(
        services: Services, standin_api, tmp_path: Path) -> None:
    # No ProvisionInference ran: the batch has no queue, so the service's automation fails
    # after it saved the image, and answers the failure in imageAttempt.errors.
    batch_id = create_batch(services.api)
    outcome = ingest_image(jpeg_bytes(tmp_path), batch_source(batch_id), services)

    assert (outcome.outcome, outcome.reason) == (INGESTED, None)
    [warning] = outcome.warnings
    assert warning.startswith("saved, but the API reported:") and "queue" in warning.lower()
    assert len(keys(services, services.settings.serving_bucket)) == 3
    assert keys(services, services.settings.dead_letter_bucket) == []
    assert standin_api.store.image(outcome.id) is not None
    assert len(standin_api.store.image_errors(batch_id)) == 1


def test_a_corrupted_jpeg_is_one_image_error_not_a_create_image(services: Services,
                                                                 standin_api) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")
    outcome = ingest_image(b"\xff\xd8\xff\xe0" + b"\x01" * 500, batch_source(batch_id), services)
    assert (outcome.outcome, outcome.reason) == (DEAD_LETTER, reasons.CORRUPTED_IMAGE_FILE)
    assert outcome.detail.startswith("corrupted image file")
    [error] = standin_api.store.image_errors(batch_id)
    assert error["error"].startswith("CORRUPTED_IMAGE_FILE: corrupted image file")
    assert standin_api.store.images(batch_id) == []


def test_a_zero_byte_file_is_dead_lettered_and_counted_as_one_image_error(
        services: Services, standin_api) -> None:
    batch_id = create_batch(services.api)
    outcome = ingest_image(b"", batch_source(batch_id), services)
    assert (outcome.outcome, outcome.reason, outcome.md) == (DEAD_LETTER, reasons.EMPTY_FILE, None)
    assert keys(services, services.settings.dead_letter_bucket) == [
        f"EMPTY_FILE/{batch_id}/0/cam/IMG_1.JPG"]
    # Never sent to createImage (no serial, no date: it would record three errors for one file).
    [error] = standin_api.store.image_errors(batch_id)
    assert (error["image"], error["error"].split(":")[0]) == ("cam/IMG_1.JPG", reasons.EMPTY_FILE)


def test_a_single_file_refused_before_the_api_records_nothing(services: Services,
                                                              standin_api) -> None:
    source = ImageSource(file_name="IMG_1.JPG", bucket="in", key="cam/IMG_1.JPG")
    outcome = ingest_image(b"", source, services)
    assert outcome.reason == reasons.EMPTY_FILE
    assert standin_api.store.image_errors(None) == []  # no batch to count it in


def test_a_single_image_is_ingested_then_its_source_deleted(services: Services,
                                                            tmp_path: Path) -> None:
    bucket = services.settings.ingestion_bucket
    services.s3.put_object(Bucket=bucket, Key="cam7/IMG_9.JPG", Body=jpeg_bytes(tmp_path))
    outcome = ingest_single_image(services, bucket, "cam7/IMG_9.JPG")

    assert outcome.outcome == INGESTED
    assert (outcome.md["batchId"], outcome.md["Path"]) == (None, None)
    assert keys(services, bucket) == []
    assert ingest_single_image(services, bucket, "cam7/IMG_9.JPG") is None  # repeated event


def test_bad_single_images_with_one_file_name_keep_one_object_each(services: Services) -> None:
    bucket = services.settings.ingestion_bucket
    sent = [f"camera {i}'s bad file".encode() for i in range(3)]
    outcomes = []
    for data in sent:  # three cameras, one after another, all naming it IMG_0001.JPG
        services.s3.put_object(Bucket=bucket, Key="IMG_0001.JPG", Body=data)
        outcomes.append(ingest_single_image(services, bucket, "IMG_0001.JPG"))

    dead_letter = services.settings.dead_letter_bucket
    stored = [services.s3.get_object(Bucket=dead_letter, Key=key)["Body"].read()
              for outcome in outcomes for key in outcome.keys]
    assert stored == sent
    assert len(keys(services, dead_letter)) == 3


def test_a_long_path_gets_a_shortened_key_and_keeps_its_full_name(services: Services,
                                                                   standin_api) -> None:
    batch_id = create_batch(services.api)
    path = "/".join(["ü" * 120] * 8) + "/IMG_1.JPG"  # 1,929 bytes of UTF-8
    outcome = ingest_image(b"not an image", batch_source(batch_id, path), services)

    [key] = outcome.keys
    assert len(key.encode()) <= 1024 and key.endswith("/IMG_1.JPG")
    assert outcome.path == path  # the full name is in the outcome (and so in the report)
    [error] = standin_api.store.image_errors(batch_id)
    assert error["image"] == path


def test_in_maintenance_mode_a_single_image_is_parked_unprocessed(
        s3, api_client, standin_api, settings, tmp_path: Path) -> None:
    from dataclasses import replace

    services = Services(s3=s3, api=api_client, settings=replace(settings, maintenance_mode=True))
    bucket = settings.ingestion_bucket
    data = jpeg_bytes(tmp_path)
    s3.put_object(Bucket=bucket, Key="cam7/IMG_9.JPG", Body=data)

    assert ingest_single_image(services, bucket, "cam7/IMG_9.JPG") is None
    parked = s3.get_object(Bucket=settings.parking_lot_bucket, Key="cam7/IMG_9.JPG")
    assert parked["Body"].read() == data
    assert keys(services, bucket) == [] and keys(services, settings.serving_bucket) == []
    assert standin_api.store.images(None) == []


def test_maintenance_mode_is_a_stage_setting() -> None:
    from functions.platform.settings import Settings

    assert Settings.from_environment({"MAINTENANCE_MODE": "true"}).maintenance_mode
    assert not Settings.from_environment({}).maintenance_mode
