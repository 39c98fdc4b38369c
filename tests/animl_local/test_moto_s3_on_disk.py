"""The on-disk paths answer exactly as moto's own: the same bytes, ETag and ranges."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from animl_local.moto_s3_on_disk import s3_objects_on_disk
from tests.conftest import REGION

PART = 5 * 1024 * 1024  # S3's smallest part but the last
RANGES = ["bytes=0-99", f"bytes={PART - 5}-{PART + 5}", "bytes=-10", "bytes=100-",
          "bytes=5-3", None]


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
    return {"etag": done["ETag"], "length": head["ContentLength"], "ranges": ranges,
            "uploads": client.list_multipart_uploads(Bucket="bkt").get("Uploads", [])}


@pytest.mark.parametrize("sizes", [[PART, 3 * 1024 * 1024 + 7], [1234]])
def test_completing_and_reading_in_ranges_answer_as_moto_does(sizes: list[int]) -> None:
    parts = [os.urandom(size) for size in sizes]
    with s3(on_disk=False) as plain:
        expected = answers(plain, parts)
    with s3(on_disk=True) as on_disk:
        assert answers(on_disk, parts) == expected
    assert expected["ranges"][None][0] == b"".join(parts)


def test_a_part_that_does_not_match_is_refused_as_moto_does() -> None:
    for on_disk in (False, True):
        with s3(on_disk) as client:
            upload = client.create_multipart_upload(Bucket="bkt", Key="k")["UploadId"]
            client.upload_part(Bucket="bkt", Key="k", UploadId=upload, PartNumber=1, Body=b"x")
            with pytest.raises(client.exceptions.ClientError, match="InvalidPart"):
                client.complete_multipart_upload(
                    Bucket="bkt", Key="k", UploadId=upload,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0" * 32'}]})
