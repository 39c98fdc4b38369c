"""moto's requests freed as soon as they are answered, and their bodies never copied.

moto (5.2.5) turns every call into a werkzeug Request, which puts itself into its own WSGI
environ (`environ["werkzeug.request"]`): a reference cycle, so the request and the body it
holds outlive the call until Python's cyclic collector runs a full collection. With moto's
models and botocore's service models loaded, full collections are rare, and a local run kept
every body it had sent: an upload's 100 MB parts (2.2 GB for a 1,000-photo archive) and each
photo, rendition and ranged read of a batch. Nothing in moto reads the environ's back
reference, so moto's Request is built without it.

moto also hands a call's body to werkzeug as a stream and reads it back (in 64 KB chunks joined
into a new buffer) the first time it asks for the request's data: for a 1 GB upload, 3 s of
copying. A body botocore sent as bytes, or as the BytesIO it wraps S3 bodies in (PutObject,
UploadPart), is already what that read returns, so the request is given it as its data.
Local only, both entered by the embedded stage.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from botocore.httpchecksum import AwsChunkedWrapper
from moto.core.request import Request

_original_init = Request.__init__
_original_from_primitives = Request.from_primitives.__func__  # type: ignore[attr-defined]


def _init_without_back_reference(self: Request, *args: Any, **kwargs: Any) -> None:
    if len(args) < 2:  # populate_request not given by position
        kwargs["populate_request"] = False
    _original_init(self, *args, **kwargs)


@contextmanager
def moto_requests_freed_when_answered() -> Iterator[None]:
    with mock.patch.object(Request, "__init__", _init_without_back_reference):
        yield


def _from_primitives_keeping_the_body(cls: type[Request], method: str, url: str, headers: Any,
                                      body: Any = None) -> Request:
    if isinstance(body, AwsChunkedWrapper):
        body = body.read()  # as moto's own first step does: the encoded body, as bytes
    data = _bytes_sent(body)  # before moto's werkzeug reads the stream to its end
    request: Request = _original_from_primitives(cls, method, url, headers, body)
    if data is not None:
        # What werkzeug's get_data() keeps after reading the stream; a form is parsed from it.
        request._cached_data = data  # type: ignore[attr-defined]
    return request


def _bytes_sent(body: Any) -> bytes | None:
    """The body's bytes when they are at hand without reading a stream: bytes, or a BytesIO
    not yet read from (getvalue() returns the bytes it was made from, uncopied)."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, io.BytesIO) and body.tell() == 0:
        return body.getvalue()
    return None


@contextmanager
def moto_request_bodies_not_copied() -> Iterator[None]:
    with mock.patch.object(Request, "from_primitives",
                           classmethod(_from_primitives_keeping_the_body)):
        yield
