"""moto's S3 (5.2) URL table read once per value of what it depends on, not at every request.

To route a request, moto reads S3's URL table, and S3 builds it by re-importing `moto.s3.urls`
(importlib.reload) each time, because the table's custom endpoints come from the environment
(MOTO_S3_CUSTOM_ENDPOINTS). That is two module reloads for every S3 request: several thousand
in a local run of a few hundred photos, all in the one interpreter the stage's threads share.
Here the table is read once for each value of that variable and kept. Local only, entered by
the embedded stage.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from unittest import mock

from moto.s3.models import S3Backend

# The environment variable moto.s3.urls reads (moto.settings.get_s3_custom_endpoints).
CUSTOM_ENDPOINTS = "MOTO_S3_CUSTOM_ENDPOINTS"


@contextmanager
def s3_urls_read_once() -> Iterator[None]:
    """Within this context, S3's URL table is built once per MOTO_S3_CUSTOM_ENDPOINTS value."""
    build = S3Backend._url_module.fget  # type: ignore[attr-defined]
    tables: dict[str | None, SimpleNamespace] = {}
    lock = threading.Lock()

    def url_module(self: S3Backend) -> Any:
        endpoints = os.environ.get(CUSTOM_ENDPOINTS)
        with lock:
            if endpoints not in tables:
                # reload() refills the one module object: keep copies of what it holds now.
                module = build(self)
                tables[endpoints] = SimpleNamespace(url_bases=list(module.url_bases),
                                                    url_paths=dict(module.url_paths))
            return tables[endpoints]

    with mock.patch.object(S3Backend, "_url_module", property(url_module)):
        yield
