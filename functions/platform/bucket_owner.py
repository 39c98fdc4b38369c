"""Every S3 call that names one of the stage's buckets says whose bucket it expects.

Bucket names are predictable (`animl-images-serving-<stage>`): another account could own a bucket
of that name, and a call that reaches it would hand images to a stranger. S3 refuses a request
whose `ExpectedBucketOwner` is not the bucket's owner (403 AccessDenied). One botocore handler
per S3 client adds it, so no call site can forget: for each operation whose input has the member
(read from botocore's service model, not from a list), when `Bucket` is a stage bucket; and
`ExpectedSourceBucketOwner` when a copy's `CopySource` is one. A value the caller set wins.

The owner is the stage's account: on Lambda, from the invocation's function ARN (no STS call),
remembered by `remember_invocation`, which each handler calls; for operator tools, the account of
their credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

OwnerOf = Callable[[], str | None]

_invocation_account: str | None = None


def expect_owner(s3: Any, buckets: Iterable[str], owner: OwnerOf) -> None:
    """Register on the S3 client `s3`: calls naming one of `buckets` expect `owner()`'s account.

    `owner` returns None while no account is known (then nothing is added).
    """
    names = frozenset(buckets)

    def add_expected_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        members = model.input_shape.members if model.input_shape is not None else {}
        names_bucket = "ExpectedBucketOwner" in members and params.get("Bucket") in names
        names_source = ("ExpectedSourceBucketOwner" in members
                        and source_bucket(params.get("CopySource")) in names)
        if not (names_bucket or names_source):
            return
        account = owner()
        if account is None:
            return
        if names_bucket:
            params.setdefault("ExpectedBucketOwner", account)
        if names_source:
            params.setdefault("ExpectedSourceBucketOwner", account)

    s3.meta.events.register("before-parameter-build.s3", add_expected_owner,
                            unique_id="animl-expected-bucket-owner")


def source_bucket(copy_source: Any) -> str | None:
    """The bucket of a CopySource, given as {"Bucket", "Key"} or "bucket/key[?versionId=]"."""
    if isinstance(copy_source, dict):
        return copy_source.get("Bucket")
    if isinstance(copy_source, str):
        return unquote(copy_source.lstrip("/").partition("/")[0])
    return None


def account_of_function_arn(arn: str) -> str:
    """`arn:aws:lambda:<region>:<account>:function:<name>` -> the account."""
    return arn.split(":")[4]


def remember_invocation(context: Any) -> None:
    """Note the account this container runs in, from the invocation's own function ARN."""
    global _invocation_account
    arn = getattr(context, "invoked_function_arn", None)
    if arn:
        _invocation_account = account_of_function_arn(str(arn))


def invocation_account() -> str | None:
    """The account of the latest invocation this container served, None before the first."""
    return _invocation_account
