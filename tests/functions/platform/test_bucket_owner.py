"""Calls naming a stage bucket expect the stage's account: S3 (here moto, made to check the
headers as S3 does) refuses them on a bucket of another account."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from animl_local.moto_s3_owner import expected_owners_enforced
from functions.platform import bucket_owner
from functions.platform.runtime import Runtime
from functions.platform.settings import Settings
from functions.platform.storage import copy_range
from tests.conftest import REGION

SETTINGS = Settings(stage="test", region=REGION)
OURS = "123456789012"  # moto's default account: the stage's
THEIRS = "999988887777"
HEADER = "x-amz-expected-bucket-owner"
SOURCE_HEADER = "x-amz-source-expected-bucket-owner"


@dataclass
class Context:
    invoked_function_arn: str


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bucket_owner, "_invocation_account", None)  # a fresh container
    with mock_aws(), expected_owners_enforced():
        yield


def make_bucket(name: str, account: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as env:
        env.setenv("MOTO_ACCOUNT_ID", account)
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


def invoked_in(account: str) -> None:
    bucket_owner.remember_invocation(Context(
        f"arn:aws:lambda:{REGION}:{account}:function:animl-ingest-test-on_upload"))


def sent_headers(s3: Any) -> list[tuple[str, dict[str, str]]]:
    """(operation, headers) of every request `s3` sends from now on."""
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        headers = {k: v.decode() if isinstance(v, bytes) else v
                   for k, v in request.headers.items()}
        sent.append((event_name.rsplit(".", 1)[-1], headers))

    s3.meta.events.register("before-send.s3", record)
    return sent


def test_calls_on_stage_buckets_expect_the_invocation_account(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bucket(SETTINGS.serving_bucket, OURS, monkeypatch)
    make_bucket("someone-elses-public-data", OURS, monkeypatch)
    invoked_in(OURS)
    s3 = Runtime(SETTINGS).client("s3")
    sent = sent_headers(s3)
    s3.put_object(Bucket=SETTINGS.serving_bucket, Key="a.jpg", Body=b"x")
    assert s3.get_object(Bucket=SETTINGS.serving_bucket, Key="a.jpg")["Body"].read() == b"x"
    s3.list_objects_v2(Bucket=SETTINGS.serving_bucket)
    s3.put_object(Bucket="someone-elses-public-data", Key="a", Body=b"x")

    assert [(op, h.get(HEADER)) for op, h in sent] == [
        ("PutObject", OURS), ("GetObject", OURS), ("ListObjectsV2", OURS),
        ("PutObject", None)]  # not a stage bucket: nothing to expect


def test_a_stage_bucket_of_another_account_is_refused(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Someone else made a bucket of our stage's name first (moto lets any account reach it).
    make_bucket(SETTINGS.dead_letter_bucket, THEIRS, monkeypatch)
    invoked_in(OURS)
    plain = boto3.client("s3", region_name=REGION)
    plain.put_object(Bucket=SETTINGS.dead_letter_bucket, Key="leak.jpg", Body=b"x")  # no check

    s3 = Runtime(SETTINGS).client("s3")
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.put_object(Bucket=SETTINGS.dead_letter_bucket, Key="img.jpg", Body=b"image")
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.get_object(Bucket=SETTINGS.dead_letter_bucket, Key="leak.jpg")


def test_a_copy_expects_the_owner_of_its_source_too(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bucket(SETTINGS.ingestion_bucket, OURS, monkeypatch)
    make_bucket(SETTINGS.dead_letter_bucket, OURS, monkeypatch)
    invoked_in(OURS)
    s3 = Runtime(SETTINGS).client("s3")
    s3.put_object(Bucket=SETTINGS.ingestion_bucket, Key="b.zip", Body=b"0123456789")
    sent = sent_headers(s3)
    copy_range(s3, SETTINGS.ingestion_bucket, "b.zip", 2, 5, SETTINGS.dead_letter_bucket, "e")

    [(operation, headers)] = [(op, h) for op, h in sent if op == "UploadPartCopy"]
    assert (headers[HEADER], headers[SOURCE_HEADER]) == (OURS, OURS)
    assert s3.get_object(Bucket=SETTINGS.dead_letter_bucket, Key="e")["Body"].read() == b"23456"


def test_a_copy_from_a_source_of_another_account_is_refused(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bucket(SETTINGS.ingestion_bucket, THEIRS, monkeypatch)
    make_bucket(SETTINGS.dead_letter_bucket, OURS, monkeypatch)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=SETTINGS.ingestion_bucket, Key="b.zip", Body=b"0123456789")
    invoked_in(OURS)
    s3 = Runtime(SETTINGS).client("s3")
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.copy_object(Bucket=SETTINGS.dead_letter_bucket, Key="e",
                       CopySource={"Bucket": SETTINGS.ingestion_bucket, "Key": "b.zip"})


def test_before_any_invocation_nothing_is_expected(aws: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_bucket(SETTINGS.serving_bucket, OURS, monkeypatch)
    s3 = Runtime(SETTINGS).client("s3")
    sent = sent_headers(s3)
    s3.head_bucket(Bucket=SETTINGS.serving_bucket)
    assert [h.get(HEADER) for _, h in sent] == [None]


@pytest.mark.parametrize(("copy_source", "bucket"), [
    ({"Bucket": "b", "Key": "k"}, "b"), ("b/k/1.jpg", "b"), ("/b/k?versionId=3", "b"),
    ("b%2Dx/k", "b-x"), (None, None)])
def test_the_source_bucket_of_a_copy(copy_source: Any, bucket: str | None) -> None:
    assert bucket_owner.source_bucket(copy_source) == bucket
