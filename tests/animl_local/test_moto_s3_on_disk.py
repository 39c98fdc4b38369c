"""The on-disk paths answer exactly as moto's own: the same bytes, ETag and ranges; and where moto
is more lenient than AWS (a copy pinned to another ETag), the local stage refuses as AWS does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from animl_local.moto_s3_on_disk import s3_objects_on_disk
from tests.conftest import REGION

PART = 5 * 1024 * 1024  # S3's smallest part but the last
RANGES = ["bytes=0-99", f"bytes={PART - 5}-{PART + 5}", f"bytes={PART - 1}-{2 * PART + 1}",
          "bytes=-10", "bytes=100-", "bytes=5-3", None]


@contextmanager
def s3(on_disk: bool) -> Iterator[Any]:
    with ExitStack() as stack:
        if on_disk:
            stack.enter_context(s3_objects_on_disk())
        stack.enter_context(mock_aws())
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def answers(client: Any, parts: list[bytes]) -> dict[str, Any]:
    upload = client.create_multipart_upload(Bucket="bkt", Key="k")["UploadId"]
    etags = [client.upload_part(Bucket="bkt", Key="k", UploadId=upload, PartNumber=n,
                                Body=body)["ETag"] for n, body in enumerate(parts, 1)]
    done = client.complete_multipart_upload(
        Bucket="bkt", Key="k", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]})
    head = client.head_object(Bucket="bkt", Key="k")
    ranges = {}
    for wanted in RANGES:
        extra = {"Range": wanted} if wanted else {}
        try:
            got = client.get_object(Bucket="bkt", Key="k", **extra)
        except client.exceptions.ClientError as refused:  # past the end: refused alike
            ranges[wanted] = refused.response["Error"]["Code"]
            continue
        ranges[wanted] = (got["Body"].read(), got.get("ContentRange"), got["ContentLength"])
    client.copy_object(Bucket="bkt", Key="copy", CopySource={"Bucket": "bkt", "Key": "k"})
    copied = client.get_object(Bucket="bkt", Key="copy")
    return {"etag": done["ETag"], "length": head["ContentLength"], "ranges": ranges,
            "copy": (copied["ETag"], copied["Body"].read()),
            "uploads": client.list_multipart_uploads(Bucket="bkt").get("Uploads", [])}


@pytest.mark.parametrize("sizes", [[PART, 3 * 1024 * 1024 + 7], [PART, PART, 10], [1234]])
def test_completing_and_reading_in_ranges_answer_as_moto_does(sizes: list[int]) -> None:
    parts = [os.urandom(size) for size in sizes]
    with s3(on_disk=False) as plain:
        expected = answers(plain, parts)
    with s3(on_disk=True) as on_disk:
        assert answers(on_disk, parts) == expected
    assert expected["ranges"][None][0] == b"".join(parts)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_completed_upload_lets_its_parts_files_go_when_deleted() -> None:
    """The object owns its parts' spooled files: deleting it closes them (none is left open),
    and the object is never rewritten in place."""
    parts = [os.urandom(PART), os.urandom(PART)]
    with s3(on_disk=True) as client:
        before = open_files()
        assert answers(client, parts)["ranges"][None][0] == b"".join(parts)
        client.delete_object(Bucket="bkt", Key="copy")
        client.delete_object(Bucket="bkt", Key="k")
        assert open_files() <= before


def test_a_part_that_does_not_match_is_refused_as_moto_does() -> None:
    for on_disk in (False, True):
        with s3(on_disk) as client:
            upload = client.create_multipart_upload(Bucket="bkt", Key="k")["UploadId"]
            client.upload_part(Bucket="bkt", Key="k", UploadId=upload, PartNumber=1, Body=b"x")
            with pytest.raises(client.exceptions.ClientError, match="InvalidPart"):
                client.complete_multipart_upload(
                    Bucket="bkt", Key="k", UploadId=upload,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0" * 32'}]})


def refusal(call: Any) -> tuple[int, str] | None:
    """(HTTP status, error code) of a refused call, None if it succeeded."""
    try:
        call()
    except ClientError as refused:
        return (refused.response["ResponseMetadata"]["HTTPStatusCode"],
                refused.response["Error"]["Code"])
    return None


# AWS's documented answer when If-Match / x-amz-copy-source-if-match does not hold (GetObject,
# UploadPartCopy): 412 with the error code PreconditionFailed. HeadObject has no body: 412 only.
PRECONDITION_FAILED = (412, "PreconditionFailed")


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_ranged_get_pinned_to_another_etag_is_refused_as_aws_does(on_disk: bool) -> None:
    with s3(on_disk) as client:
        old = client.put_object(Bucket="bkt", Key="k", Body=b"first upload")["ETag"]
        client.put_object(Bucket="bkt", Key="k", Body=b"second upload")
        get = lambda: client.get_object(Bucket="bkt", Key="k", Range="bytes=0-4",  # noqa: E731
                                        IfMatch=old)
        assert refusal(get) == PRECONDITION_FAILED
        assert refusal(lambda: client.head_object(Bucket="bkt", Key="k", IfMatch=old)) == (
            412, "412")
        current = client.head_object(Bucket="bkt", Key="k")["ETag"]
        assert client.get_object(Bucket="bkt", Key="k", Range="bytes=0-5",
                                 IfMatch=current)["Body"].read() == b"second"


def copy_part(client: Any, **condition: str) -> Any:
    upload = client.create_multipart_upload(Bucket="bkt", Key="copy")["UploadId"]
    try:
        return client.upload_part_copy(Bucket="bkt", Key="copy", UploadId=upload, PartNumber=1,
                                       CopySource={"Bucket": "bkt", "Key": "k"},
                                       CopySourceRange="bytes=0-5", **condition)
    finally:
        client.abort_multipart_upload(Bucket="bkt", Key="copy", UploadId=upload)


def test_a_part_copy_pinned_to_another_etag_is_refused_on_the_local_stage() -> None:
    with s3(on_disk=False) as plain:  # why the patch exists: moto copies anyway
        old = plain.put_object(Bucket="bkt", Key="k", Body=b"first upload")["ETag"]
        plain.put_object(Bucket="bkt", Key="k", Body=b"second upload")
        assert refusal(lambda: copy_part(plain, CopySourceIfMatch=old)) is None
    with s3(on_disk=True) as client:
        old = client.put_object(Bucket="bkt", Key="k", Body=b"first upload")["ETag"]
        current = client.put_object(Bucket="bkt", Key="k", Body=b"second upload")["ETag"]
        assert refusal(lambda: copy_part(client, CopySourceIfMatch=old)) == PRECONDITION_FAILED
        assert refusal(lambda: copy_part(client, CopySourceIfNoneMatch=current)) == (
            PRECONDITION_FAILED)
        assert refusal(lambda: copy_part(client, CopySourceIfMatch=current.strip('"'))) is None
        assert refusal(lambda: copy_part(client, CopySourceIfNoneMatch=old)) is None


@pytest.mark.parametrize("copy_range", ["bytes=3-8", None])
def test_a_part_copy_answers_as_moto_does(copy_range: str | None) -> None:
    data = os.urandom(PART + 100)
    answers = []
    for on_disk in (False, True):
        with s3(on_disk) as client:
            client.put_object(Bucket="bkt", Key="k", Body=data)
            upload = client.create_multipart_upload(Bucket="bkt", Key="copy")["UploadId"]
            extra = {"CopySourceRange": copy_range} if copy_range else {}
            etag = client.upload_part_copy(Bucket="bkt", Key="copy", UploadId=upload,
                                           PartNumber=1, CopySource={"Bucket": "bkt", "Key": "k"},
                                           **extra)["CopyPartResult"]["ETag"]
            client.complete_multipart_upload(Bucket="bkt", Key="copy", UploadId=upload,
                                             MultipartUpload={"Parts": [
                                                 {"PartNumber": 1, "ETag": etag}]})
            answers.append((etag, client.get_object(Bucket="bkt", Key="copy")["Body"].read()))
    assert answers[0] == answers[1]
