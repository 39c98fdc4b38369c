"""moto's S3 URL table is read once per custom-endpoint setting, not re-imported per request."""

from __future__ import annotations

import importlib

import boto3
import moto.s3.models
import moto.s3.urls
import pytest
from moto import mock_aws

from animl_local.engine import ACCOUNT_ID
from animl_local.moto_s3_urls import CUSTOM_ENDPOINTS, s3_urls_read_once
from tests.conftest import REGION


def backend() -> moto.s3.models.S3Backend:
    return moto.s3.models.S3Backend(REGION, ACCOUNT_ID)


def moto_own_table() -> tuple[list[str], dict]:
    """The table as moto builds it for the environment now."""
    module = importlib.reload(moto.s3.urls)
    return list(module.url_bases), dict(module.url_paths)


def test_the_table_follows_the_custom_endpoints_setting(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    with s3_urls_read_once():
        for endpoints in (None, "http://store.example:9000", None, "http://other.example"):
            if endpoints is None:
                monkeypatch.delenv(CUSTOM_ENDPOINTS, raising=False)
            else:
                monkeypatch.setenv(CUSTOM_ENDPOINTS, endpoints)
            table = backend()._url_module
            assert (table.url_bases, table.url_paths) == moto_own_table()
            if endpoints:
                assert endpoints in table.url_bases


def test_the_table_is_not_re_imported_while_the_setting_stays(
        monkeypatch: pytest.MonkeyPatch) -> None:
    reloads = []

    def counted_reload(module: object) -> object:
        reloads.append(module)
        return importlib.reload(module)  # type: ignore[arg-type]

    monkeypatch.setattr(moto.s3.models, "reload", counted_reload)  # moto's own import of it
    with s3_urls_read_once(), mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
        for n in range(5):
            s3.put_object(Bucket="bkt", Key=f"k{n}", Body=b"x")
        assert s3.get_object(Bucket="bkt", Key="k4")["Body"].read() == b"x"
    assert len(reloads) <= 1
