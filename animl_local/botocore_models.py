"""botocore's JSON models parsed once, not once per session, while it is wanted (local only).

A new botocore session parses the JSON models of the services its clients use again, and a
local run makes many: moto's EC2 import alone (three, each parsing EC2's model, the largest),
the stage's, the stand-in API's, the handlers' runtime, moto's default session (its
interpreter's clients, the inference consumer's): some 2 s of parsing in a 20-photo run,
endpoints.json nine times and EC2's model three. Within `botocore_models_parsed_once` sessions
share one loader, which keeps what it parsed; that is read-only, as the clients of one session
already share it. The one loader outlives the context, so nested and later uses share it too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import botocore.loaders
import botocore.session

_one_loader = functools.cache(botocore.loaders.create_loader)


@contextmanager
def botocore_models_parsed_once() -> Iterator[None]:
    with mock.patch.object(botocore.session, "create_loader", _one_loader):
        yield
