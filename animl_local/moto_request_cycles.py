"""moto's requests freed as soon as they are answered, not at the next full garbage collection.

moto (5.2.5) turns every call into a werkzeug Request, which puts itself into its own WSGI
environ (`environ["werkzeug.request"]`): a reference cycle, so the request and the body it
holds outlive the call until Python's cyclic collector runs a full collection. With moto's
models and botocore's service models loaded, full collections are rare, and a local run kept
every body it had sent: an upload's 100 MB parts (2.2 GB for a 1,000-photo archive) and each
photo, rendition and ranged read of a batch. Nothing in moto reads the environ's back
reference, so moto's Request is built without it. Local only, entered by the embedded stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.core.request import Request

_original_init = Request.__init__


def _init_without_back_reference(self: Request, *args: Any, **kwargs: Any) -> None:
    if len(args) < 2:  # populate_request not given by position
        kwargs["populate_request"] = False
    _original_init(self, *args, **kwargs)


@contextmanager
def moto_requests_freed_when_answered() -> Iterator[None]:
    with mock.patch.object(Request, "__init__", _init_without_back_reference):
        yield
