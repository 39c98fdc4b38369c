"""A copy read from moto's store holds what GetObject answers; what GetObject refuses is refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from animl_local.moto_s3_copies import NoSuchObject, copy_object
from animl_local.moto_s3_on_disk import s3_objects_on_disk
from tests.conftest import REGION

SPOOLED = 6 * 1024 * 1024  # over moto's in-memory buffer (5 MiB less 1 KiB): kept in a file
PART = 5 * 1024 * 1024


def put_multipart(s3: Any, bucket: str, key: str, parts: list[bytes]) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n,
                            Body=body)["ETag"] for n, body in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]})


def got(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def test_copies_hold_the_bytes_getobject_answers(s3: Any, tmp_path: Path) -> None:
    bucket = "copies-bkt"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="small/a b#1.jpg", Body=b"\xff\xd8 a photo")
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    s3.put_object(Bucket=bucket, Key="spooled", Body=os.urandom(SPOOLED))
    s3.put_object(Bucket=bucket, Key="spooled", Body=os.urandom(SPOOLED + 1))  # its latest version
    with s3_objects_on_disk():  # as the embedded stage joins an upload's parts
        put_multipart(s3, bucket, "joined", [os.urandom(PART), os.urandom(1234)])
    keys = ["small/a b#1.jpg", "empty", "spooled", "joined"]

    for number, key in enumerate(keys):
        copy_object(bucket, key, tmp_path / str(number))

    assert [(tmp_path / str(n)).read_bytes() for n in range(len(keys))] == \
        [got(s3, bucket, key) for key in keys]
    assert (tmp_path / "2").stat().st_size == SPOOLED + 1


def test_a_copy_of_what_getobject_refuses_is_refused(s3: Any, tmp_path: Path) -> None:
    versioned = "copies-versioned"
    s3.create_bucket(Bucket=versioned, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=versioned, Key="gone", Body=b"x")
    s3.delete_object(Bucket=versioned, Key="gone")  # its latest version is a delete marker

    for bucket, key, error in [(versioned, "gone", "NoSuchKey"), (versioned, "never", "NoSuchKey"),
                               ("no-such-bucket", "k", "NoSuchBucket")]:
        with pytest.raises(ClientError) as refused:
            s3.get_object(Bucket=bucket, Key=key)
        assert refused.value.response["Error"]["Code"] == error
        with pytest.raises(NoSuchObject, match=bucket):
            copy_object(bucket, key, tmp_path / "copy")
