"""moto's requests (and the bodies they hold) are freed when answered, not at a full collection."""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import boto3
import pytest
from moto import mock_aws
from moto.core.request import Request
from werkzeug.wsgi import LimitedStream

from animl_local.moto_request_cycles import (
    moto_request_bodies_not_copied,
    moto_requests_freed_when_answered,
)
from tests.conftest import REGION


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def live_requests() -> int:
    return sum(isinstance(obj, Request) for obj in gc.get_objects())


def requests_left_after_puts(patched: bool) -> int:
    with ExitStack() as stack:
        if patched:
            stack.enter_context(moto_requests_freed_when_answered())
        stack.enter_context(mock_aws())
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
        with collector_off():
            before = live_requests()
            for number in range(5):
                client.put_object(Bucket="bkt", Key=f"k{number}", Body=b"x" * 1_000_000)
                assert client.get_object(Bucket="bkt", Key=f"k{number}",
                                         Range="bytes=0-9")["Body"].read() == b"x" * 10
            return live_requests() - before


def test_moto_alone_keeps_each_answered_request_until_a_full_collection() -> None:
    # The reason for the patch: when moto stops doing this, the patch can go.
    assert requests_left_after_puts(patched=False) >= 10


def test_patched_moto_frees_each_request_when_answered() -> None:
    assert requests_left_after_puts(patched=True) == 0


@pytest.mark.parametrize("populate", [True, False])
def test_a_request_asked_to_populate_its_environ_by_position_still_can(populate: bool) -> None:
    with moto_requests_freed_when_answered():
        request = Request({"REQUEST_METHOD": "GET"}, populate)
    assert ("werkzeug.request" in request.environ) is populate


def test_a_body_sent_as_bytes_is_the_requests_data_uncopied() -> None:
    body = b"\x00photo" * 1000
    with moto_request_bodies_not_copied():
        request = Request.from_primitives("PUT", "https://bkt.s3.amazonaws.com/k", {}, body)
    assert request.data is body
    assert request.get_data() is body
    plain = Request.from_primitives("PUT", "https://bkt.s3.amazonaws.com/k", {}, body)
    assert plain.data == body and plain.data is not body  # moto alone reads a copy back


def test_a_form_body_is_still_parsed_from_the_kept_bytes() -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    with moto_request_bodies_not_copied():
        request = Request.from_primitives("POST", "https://sts.amazonaws.com/", headers,
                                          b"Action=GetCallerIdentity&Version=2011-06-15")
    assert request.form.to_dict() == {"Action": "GetCallerIdentity", "Version": "2011-06-15"}


def test_an_s3_put_is_answered_without_reading_its_body_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sends PutObject and UploadPart bodies as a BytesIO (checksums only where
    required, as the embedded stage asks) or aws-chunked (botocore's default): both are kept,
    and so is a GET's missing body."""
    reads = []
    original = LimitedStream.readall
    monkeypatch.setattr(LimitedStream, "readall",
                        lambda stream: reads.append(1) or original(stream))
    body = os.urandom(3 * 1024 * 1024)
    for kept, checksums in ((False, "when_required"), (True, "when_required"),
                            (True, "when_supported")):
        monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", checksums)
        reads.clear()
        with ExitStack() as stack:
            if kept:
                stack.enter_context(moto_request_bodies_not_copied())
            stack.enter_context(mock_aws())
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket="bkt",
                             CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_object(Bucket="bkt", Key="k", Body=body)
            upload = s3.create_multipart_upload(Bucket="bkt", Key="m")["UploadId"]
            s3.upload_part(Bucket="bkt", Key="m", UploadId=upload, PartNumber=1, Body=body)
            assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == body
        assert (len(reads) == 0) is kept


def test_a_stream_already_read_from_is_left_to_moto() -> None:
    stream = io.BytesIO(b"header and body")
    stream.read(7)
    with moto_request_bodies_not_copied():
        request = Request.from_primitives("PUT", "https://bkt.s3.amazonaws.com/k", {}, stream)
    assert request.get_data() == b"and body"


def test_moto_answers_alike_with_bodies_kept() -> None:
    """Objects, ranges and a query-protocol call (a form body) through moto with the patch."""
    body = bytes(range(256)) * 4096
    with moto_request_bodies_not_copied(), mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
        put = s3.put_object(Bucket="bkt", Key="k", Body=body)
        got = s3.get_object(Bucket="bkt", Key="k", Range="bytes=10-19")
        assert got["Body"].read() == body[10:20]
        assert s3.get_object(Bucket="bkt", Key="k")["ETag"] == put["ETag"]
        identity = boto3.client("sts", region_name=REGION).get_caller_identity()
        assert identity["Account"]
