"""The one client of the Animl GraphQL API.

Every call is a POST of `{"query", "variables"}` with the `x-api-key` header. Failures come in
three kinds, because each asks for something different of the caller:
- `AnimlApiUnavailable`: transport failure, timeout, 5xx or 429. The client retries these itself
  (`RetryPolicy`: exponential backoff with full jitter, a 429's `Retry-After` honoured), never
  past the time its invocation has left; what still fails is raised for the state machine's
  Retry, the outer net.
- `AnimlApiRefused`: any other HTTP 4xx. A 400 means the service's schema refused our document or
  variables: a defect in ingest, never retried; 401/403 mean the key is wrong.
- `AnimlApiRejected`: HTTP 200 with `errors`: the service ran the operation and threw (an unknown
  batch, "Image not found"); `code` holds the error's `extensions.code`.
The key is never put in a message, a log line or a repr.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from functions.platform import logs
from functions.platform.settings import Settings

logger = logs.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
NOT_FOUND = "NOT_FOUND"  # extensions.code of the service's NotFoundError


class AnimlApiError(Exception):
    """Any failure of an API call."""


class AnimlApiUnavailable(AnimlApiError):
    """Transport failure, timeout or a 5xx/429: worth retrying (after `retry_after` seconds,
    when the service said). `maybe_done`: the service may have run the operation and only its
    answer was lost (a timeout, a 5xx); a 429 or a refused connection never ran it."""

    def __init__(self, message: str, retry_after: float | None = None,
                 maybe_done: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_done = maybe_done


class AnimlApiRefused(AnimlApiError):
    """An HTTP 4xx (not 429): the request itself is wrong (400) or not allowed (401/403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AnimlApiRejected(AnimlApiError):
    """HTTP 200 with a GraphQL `errors` array: the service threw while running the operation."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


Credentials = tuple[str, str]  # (API URL, API key)

# An attempt given less time than this is not worth starting: the call fails as it stands.
MIN_ATTEMPT_SECONDS = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries a transient failure (the numbers are Settings': one place)."""

    attempts: int
    base_seconds: float
    cap_seconds: float
    margin_seconds: float  # kept free before the invocation's end

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.api_retry_attempts, settings.api_retry_base_seconds,
                   settings.api_retry_cap_seconds, settings.api_deadline_margin_seconds)

    def backoff(self, retry: int, draw: Callable[[], float]) -> float:
        """Full jitter: anywhere in [0, min(cap, base * 2^retry)), so that many callers failed
        by the same outage do not come back at the same moment. `draw` is in [0, 1)."""
        return draw() * min(self.cap_seconds, self.base_seconds * 2**retry)


def default_retry_policy() -> RetryPolicy:
    return RetryPolicy.from_settings(Settings(stage="default"))


RemainingSeconds = Callable[[], float]
# Asked before retrying an operation whose failed attempt may have been done: its data if it
# was (then it is not sent again), else None.
DoneAlready = Callable[[], dict[str, Any] | None]

# Connections a client keeps open: more than a group's threads call the API with at once
# (Settings.group_concurrency). requests keeps 10, and a call beyond them opened a connection
# of its own and closed it after (on AWS, a TLS handshake for every such call).
API_CONNECTIONS = 32


def pooled_session() -> requests.Session:
    """A session that keeps up to API_CONNECTIONS connections open for reuse."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=API_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(eq=False)
class AnimlApiClient:
    """One pooled HTTP session. With `reread_credentials`, a 401/403 answer makes it read the URL
    and key again and try once more (the key was rotated).

    `remaining_seconds` tells how long the invocation has left (None: no deadline, as for an
    operator's command); `within` gives a client bound to one invocation's clock that shares
    this one's session. `sleep` and `draw` (a random number in [0, 1)) are the clock and dice
    of the backoff, injectable so tests need not wait.
    """

    url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    session: requests.Session = field(default_factory=pooled_session, repr=False)
    reread_credentials: Callable[[], Credentials] | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=default_retry_policy)
    remaining_seconds: RemainingSeconds | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    draw: Callable[[], float] = field(default=random.random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def within(self, remaining_seconds: RemainingSeconds | None) -> AnimlApiClient:
        """This client (same session, credentials and policy), its retries bounded by
        `remaining_seconds`: one per invocation, since a container's client outlives it."""
        if remaining_seconds is None:
            return self
        return replace(self, remaining_seconds=remaining_seconds)

    def refresh_credentials(self) -> None:
        if self.reread_credentials is not None:
            url, key = self.reread_credentials()
            with self._lock:
                self.url, self.api_key = url, key

    def execute(self, query: str, variables: dict[str, Any] | None = None,
                done_already: DoneAlready | None = None) -> dict[str, Any]:
        """Run one operation and return its `data`; raise AnimlApiError on any failure.

        `done_already`: for a mutation that must not be sent twice, asked before each retry
        that follows a failure the service may have acted on (see `_execute_with_retries`).
        """
        try:
            return self._execute_with_retries(query, variables, done_already)
        except AnimlApiRefused as refused:
            if refused.status not in (401, 403) or self.reread_credentials is None:
                raise
        self.refresh_credentials()
        return self._execute_with_retries(query, variables, done_already)

    def _execute_with_retries(self, query: str, variables: dict[str, Any] | None,
                              done_already: DoneAlready | None = None) -> dict[str, Any]:
        """Attempts until one answers, the policy's attempts are spent, or the invocation has
        no time for another; then the last failure is raised.

        A retried mutation may have been done by the attempt that failed (the answer was lost).
        Sent again, createImage would answer an E11000 duplicate and the service would record
        an ImageError for it, and createImageError would record its error twice; so after such
        a failure `done_already` is asked first, and what it finds is the answer.
        """
        operation = operation_name(query)
        for attempt in range(1, self.retry.attempts + 1):
            # The first attempt is always made (as it was before any retry); each attempt waits
            # no longer than the time left, and a retry is made only when it fits in it.
            budget = self._time_left()
            timeout = self.timeout if budget is None else min(
                self.timeout, max(budget, MIN_ATTEMPT_SECONDS))
            try:
                return self._execute_once(query, variables, operation, timeout)
            except AnimlApiUnavailable as unavailable:
                delay = self._delay_before_retry(attempt, unavailable)
                if delay is None:
                    raise
                logger.info("%s; attempt %d of %d, the next in %.2f s", unavailable, attempt,
                            self.retry.attempts, delay)
                self.sleep(delay)
                if unavailable.maybe_done and done_already is not None:
                    found = done_already()
                    if found is not None:
                        logger.info("%s was done although its answer was lost", operation)
                        return found
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _time_left(self) -> float | None:
        """Seconds this call may still use (None: no deadline)."""
        if self.remaining_seconds is None:
            return None
        return self.remaining_seconds() - self.retry.margin_seconds

    def _delay_before_retry(self, attempt: int, failure: AnimlApiUnavailable) -> float | None:
        """How long to wait before the next attempt; None when there is none to make (the
        attempts are spent, or the wait and an attempt would not fit in the time left)."""
        if attempt >= self.retry.attempts:
            return None
        delay = failure.retry_after
        if delay is None:
            delay = self.retry.backoff(attempt - 1, self.draw)
        elif delay > self.retry.cap_seconds:
            return None  # longer than we ever wait here: the state machine's Retry, later
        budget = self._time_left()
        if budget is not None and delay + MIN_ATTEMPT_SECONDS > budget:
            return None
        return delay

    def _execute_once(self, query: str, variables: dict[str, Any] | None, operation: str,
                      timeout: float) -> dict[str, Any]:
        with self._lock:
            url, key = self.url, self.api_key
        try:
            response = self.session.post(
                url,
                json={"query": query, "variables": variables or {}},
                headers={"x-api-key": key, "content-type": "application/json"},
                timeout=timeout,
            )
        except requests.RequestException as exc:
            # The exception text can hold the URL but never the key (it is only in a header).
            # A connection never made sent nothing; any other failure may follow the service's
            # work (a read timeout, a reset while answering).
            raise AnimlApiUnavailable(
                f"Animl API unreachable ({operation}): {type(exc).__name__}",
                maybe_done=not isinstance(exc, requests.ConnectTimeout)) from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise AnimlApiUnavailable(f"Animl API HTTP {status} ({operation})",
                                      parse_retry_after(response.headers.get("retry-after")),
                                      maybe_done=status != 429)
        if status >= 400:
            raise AnimlApiRefused(_refusal_message(operation, status, response), status)
        try:
            body = response.json()
        except ValueError:
            raise AnimlApiUnavailable(
                f"Animl API replied to {operation} with a body that is not JSON") from None
        errors = body.get("errors")
        if errors:
            message, code = _first_error(errors)
            raise AnimlApiRejected(message, code)
        return body.get("data") or {}

    # The operations ingest sends, with their documents kept beside them.

    def create_image(self, md: dict[str, Any],
                     saved_already: Callable[[], dict[str, Any] | None] | None = None
                     ) -> dict[str, Any]:
        """The image attempt; `saved_already` (the attempt, if an earlier try of this call
        saved the image, else None) is asked before a retry that follows a lost answer."""
        def done_already() -> dict[str, Any] | None:
            assert saved_already is not None
            attempt = saved_already()
            return None if attempt is None else {"createImage": {"imageAttempt": attempt}}

        data = self.execute(CREATE_IMAGE, {"input": {"md": md}},
                            done_already if saved_already is not None else None)
        return data["createImage"]["imageAttempt"]

    def update_batch(self, batch_id: str, **fields: Any) -> dict[str, Any]:
        data = self.execute(UPDATE_BATCH, {"input": {"_id": batch_id, **fields}})
        return data["updateBatch"]["batch"]

    def create_batch_error(self, batch_id: str, error: str) -> dict[str, Any]:
        data = self.execute(CREATE_BATCH_ERROR, {"input": {"batch": batch_id, "error": error}})
        return data["createBatchError"]

    def create_image_error(self, image: str, batch_id: str, error: str) -> dict[str, Any]:
        """The ImageError, recorded once: after a failure that may have followed its save (the
        answer lost), the batch's ImageErrors are read first, and one with this image and
        error is taken as this call's (the service keeps nothing else to tell them apart)."""
        def done_already() -> dict[str, Any] | None:
            found = self.find_image_error(image, batch_id, error)
            return None if found is None else {"createImageError": found}

        variables = {"input": {"image": image, "batch": batch_id, "error": error}}
        return self.execute(CREATE_IMAGE_ERROR, variables, done_already)["createImageError"]

    def find_image_error(self, image: str, batch_id: str, error: str) -> dict[str, Any] | None:
        """The batch's first ImageError with this image and error, or None."""
        return next((found for found in self.image_errors(batch_id)
                     if found["image"] == image and found["error"] == error), None)

    def image_errors(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """The batch's ImageErrors, newest first, a page at a time (as they are read).

        Newest first, because the one looked for after a lost answer was just made: it is
        on the first page even when the batch has thousands. The cursor is the last error's
        (created, _id), so errors recorded meanwhile (newer) never push older ones off a page.
        """
        request: dict[str, Any] = {"filters": {"batch": batch_id}, "limit": IMAGE_ERRORS_PAGE,
                                   "paginatedField": "created", "sortAscending": False}
        while True:
            connection = self.execute(IMAGE_ERRORS, {"input": request})["imageErrors"]
            yield from connection["errors"]
            page = connection["pageInfo"]
            if not page["hasNext"]:
                return
            if not page["next"] or page["next"] == request.get("next"):
                # Asked again from the start (or the same place), it would never end.
                raise AnimlApiError("Animl API answered imageErrors with hasNext but no new "
                                    f"cursor ({page['next']!r}) for batch {batch_id}")
            request = {**request, "next": page["next"]}

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        """The image record, or None: the service answers "Image not found" as an error."""
        try:
            return self.execute(GET_IMAGE, {"input": {"imageId": image_id}}).get("image")
        except AnimlApiRejected as rejected:
            if rejected.code == NOT_FOUND:
                return None
            raise


_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)")


def operation_name(document: str) -> str:
    """The document's operation name, for messages ("anonymous" when it has none)."""
    match = _OPERATION.match(document)
    return match.group(1) if match else "anonymous operation"


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                ) -> float | None:
    """A `Retry-After` header in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now()).total_seconds())


def _refusal_message(operation: str, status: int, response: requests.Response) -> str:
    try:
        message, _ = _first_error(response.json().get("errors") or [response.text])
    except (ValueError, AttributeError):
        message = response.text
    if status == 400:
        why = "the service's schema refused the request: a defect in ingest, not retried"
    elif status in (401, 403):
        why = "check the API key"
    else:
        why = "refused"
    return f"Animl API HTTP {status} for {operation} ({why}): {_short(message)}"


def _first_error(errors: list[Any]) -> tuple[str, str | None]:
    first = errors[0]
    if isinstance(first, dict):
        code = (first.get("extensions") or {}).get("code")
        return str(first.get("message", first)), code
    return str(first), None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


CREATE_IMAGE = """
mutation CreateImage($input: CreateImageInput!) {
  createImage(input: $input) {
    imageAttempt { _id projectId batch created errors { _id error } }
  }
}"""

UPDATE_BATCH = """
mutation UpdateBatch($input: UpdateBatchInput!) {
  updateBatch(input: $input) {
    batch { _id projectId total uploadComplete processingStart ingestionComplete processingEnd }
  }
}"""

CREATE_BATCH_ERROR = """
mutation CreateBatchError($input: CreateBatchErrorInput!) {
  createBatchError(input: $input) { _id batch error created }
}"""

CREATE_IMAGE_ERROR = """
mutation CreateImageError($input: CreateImageErrorInput!) {
  createImageError(input: $input) { _id image batch error created }
}"""

# The service's largest page (mongo-cursor-pagination's MAX_LIMIT: a larger limit is cut to it).
IMAGE_ERRORS_PAGE = 300

IMAGE_ERRORS = """
query ImageErrors($input: QueryImageErrorsInput!) {
  imageErrors(input: $input) {
    pageInfo { next hasNext }
    errors { _id image batch error created }
  }
}"""

GET_IMAGE = """
query Image($input: QueryImageInput!) {
  image(input: $input) { _id projectId batchId path originalFileName }
}"""


def read_api_credentials(ssm: Any, secretsmanager: Any, stage: str) -> Credentials:
    """The API's URL (SSM) and key (Secrets Manager), where the old stack kept them."""
    names = Settings(stage=stage)
    url = ssm.get_parameter(Name=names.api_url_parameter)["Parameter"]["Value"]
    secret = secretsmanager.get_secret_value(SecretId=names.api_key_secret)["SecretString"]
    return url, json.loads(secret)["apikey"]


def client_for_stage(ssm: Any, secretsmanager: Any, stage: str, timeout: float | None = None
                     ) -> AnimlApiClient:
    """A client for the stage's API, as operator tools make one."""
    url, api_key = read_api_credentials(ssm, secretsmanager, stage)
    return AnimlApiClient(url=url, api_key=api_key, timeout=timeout or DEFAULT_TIMEOUT_SECONDS,
                          retry=RetryPolicy.from_settings(Settings(stage=stage)))
