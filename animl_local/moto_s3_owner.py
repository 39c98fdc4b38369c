"""moto's S3 (5.2) made to refuse a request whose expected bucket owner is not the bucket's.

S3 answers 403 AccessDenied when `x-amz-expected-bucket-owner` (or, for the source of a copy,
`x-amz-source-expected-bucket-owner`) names another account than the bucket's owner; moto ignores
both headers, so a local run could never show that the check is made. Local only, entered by the
tests (and the embedded stage); `functions.platform.bucket_owner` sets the headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import unquote

from moto.s3.exceptions import S3AccessDeniedError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response


@contextmanager
def expected_owners_enforced() -> Iterator[None]:
    """moto's S3 in this process refuses requests expecting another owner, for the context."""
    bucket_response, key_response = S3Response._bucket_response, S3Response._key_response

    def checked_bucket_response(self: S3Response, request: Any, full_url: str) -> Any:
        refuse_unexpected_owner(request.headers,
                                self.parse_bucket_name_from_url(request, full_url))
        return bucket_response(self, request, full_url)

    def checked_key_response(self: S3Response, request: Any, full_url: str) -> Any:
        refuse_unexpected_owner(request.headers,
                                self.parse_bucket_name_from_url(request, full_url))
        return key_response(self, request, full_url)

    with mock.patch.object(S3Response, "_bucket_response", checked_bucket_response), \
            mock.patch.object(S3Response, "_key_response", checked_key_response):
        yield


def owner_of(bucket: str) -> str | None:
    """The account that owns `bucket` in moto, None if there is no such bucket."""
    found = s3_backends.bucket_accounts.get(bucket)
    return found[1] if found else None


def refuse_unexpected_owner(headers: Any, bucket: str | None) -> None:
    """Raise AccessDenied, as S3 does, when an expected owner header names another account."""
    expected = headers.get("x-amz-expected-bucket-owner")
    if expected and bucket and owner_of(bucket) not in (None, expected):
        raise S3AccessDeniedError()
    source = headers.get("x-amz-copy-source")
    expected_source = headers.get("x-amz-source-expected-bucket-owner")
    if source and expected_source:
        source_bucket = unquote(source).lstrip("/").partition("/")[0]
        if owner_of(source_bucket) not in (None, expected_source):
            raise S3AccessDeniedError()
