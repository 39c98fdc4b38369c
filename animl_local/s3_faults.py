"""S3 answering with transient errors, for fault soaks on the embedded engine (local only).

A `before-send` hook, placed ahead of moto's, answers a seeded fraction of the S3 requests that
Lambda handlers make (`aws_calls.running_function`: the engine's own and the caller's requests
are left alone) with what S3 answers when it is busy or a request was slow: 503 SlowDown, 500
InternalError, 400 RequestTimeout. The request never reaches moto, so nothing is done; botocore's
retry (standard mode, see `functions.platform.runtime.AWS_CLIENT_CONFIG`) answers each one.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS

from animl_local.aws_calls import running_function_name

# (HTTP status, S3 error code): each transient in botocore's standard retry mode.
S3_FAULT_KINDS: dict[str, tuple[int, str]] = {
    "SlowDown": (503, "SlowDown"),
    "InternalError": (500, "InternalError"),
    "RequestTimeout": (400, "RequestTimeout"),
}


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


@dataclass
class S3Faults:
    rate: float
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def count(self) -> int:
        return sum(self.injected.values())

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if running_function_name() is None:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(sorted(S3_FAULT_KINDS))
            self.injected[kind] += 1
        status, code = S3_FAULT_KINDS[kind]
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>injected {code}</Message></Error>").encode()
        headers = HTTPHeaders()
        headers["content-type"] = "application/xml"
        return AWSResponse(request.url, status, headers, _RawBody(body))


@contextmanager
def s3_faults(rate: float, seed: int = 0) -> Iterator[S3Faults]:
    """While the context lasts, sessions made in it answer handlers' S3 calls with faults."""
    hook = S3Faults(rate, seed)
    entry = ("before-send.s3", hook)
    BUILTIN_HANDLERS.insert(0, entry)  # ahead of moto's stubber, which answers everything
    try:
        yield hook
    finally:
        BUILTIN_HANDLERS.remove(entry)
