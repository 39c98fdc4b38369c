"""The one client of the Animl GraphQL API.

Every call is a POST of `{"query", "variables"}` with the `x-api-key` header. HTTP failures and
GraphQL-level `errors` both raise; the key is never put in a message, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import requests

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0


class AnimlApiError(Exception):
    """Any failure of an API call."""


class AnimlApiUnavailable(AnimlApiError):
    """Transport failure, timeout or a 5xx/429: worth retrying."""


class AnimlApiRejected(AnimlApiError):
    """A 4xx reply or a GraphQL `errors` array: the request itself was refused."""


@dataclass(frozen=True)
class AnimlApiClient:
    url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    session: requests.Session = field(default_factory=requests.Session, repr=False, compare=False)

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation and return its `data`; raise AnimlApiError on any failure."""
        try:
            response = self.session.post(
                self.url,
                json={"query": query, "variables": variables or {}},
                headers={"x-api-key": self.api_key, "content-type": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            # The exception text can hold the URL but never the key (it is only in a header).
            raise AnimlApiUnavailable(f"Animl API unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise AnimlApiUnavailable(f"Animl API HTTP {response.status_code}")
        if response.status_code >= 400:
            raise AnimlApiRejected(
                f"Animl API HTTP {response.status_code}: {_short(response.text)}"
            )
        try:
            body = response.json()
        except ValueError:
            raise AnimlApiUnavailable("Animl API replied with a body that is not JSON") from None
        errors = body.get("errors")
        if errors:
            raise AnimlApiRejected(_first_error_message(errors))
        return body.get("data") or {}

    # The mutations ingest uses, with their documents kept beside them.

    def create_image(self, md: dict[str, Any]) -> dict[str, Any]:
        data = self.execute(CREATE_IMAGE, {"input": {"md": md}})
        return data["createImage"]["imageAttempt"]

    def update_batch(self, batch_id: str, **fields: Any) -> dict[str, Any]:
        data = self.execute(UPDATE_BATCH, {"input": {"_id": batch_id, **fields}})
        return data["updateBatch"]["batch"]

    def create_batch_error(self, batch_id: str, error: str) -> dict[str, Any]:
        data = self.execute(CREATE_BATCH_ERROR, {"input": {"batch": batch_id, "error": error}})
        return data["createBatchError"]

    def create_image_error(self, image_id: str, batch_id: str, error: str) -> dict[str, Any]:
        variables = {"input": {"image": image_id, "batch": batch_id, "error": error}}
        return self.execute(CREATE_IMAGE_ERROR, variables)["createImageError"]

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        return self.execute(GET_IMAGE, {"input": {"imageId": image_id}}).get("image")

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        return self.execute(GET_BATCH, {"id": batch_id}).get("batch")


def _first_error_message(errors: list[Any]) -> str:
    first = errors[0]
    if isinstance(first, dict):
        return str(first.get("message", first))
    return str(first)


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
    batch { _id total uploadComplete processingStart ingestionComplete processingEnd }
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

GET_IMAGE = """
query Image($input: QueryImageInput!) {
  image(input: $input) { _id projectId batchId path originalFileName hash }
}"""

GET_BATCH = """
query Batch($id: String!) {
  batch(_id: $id) {
    _id projectId overrideSerial originalFile uploadedFile total created
    uploadComplete processingStart ingestionComplete processingEnd
    errors { _id batch error created }
  }
}"""


def client_for_stage(ssm: Any, secretsmanager: Any, stage: str, timeout: float | None = None
                     ) -> AnimlApiClient:
    """The client configured as the old stack was: URL in SSM, key in Secrets Manager."""
    url = ssm.get_parameter(Name=f"/api/url-{stage}")["Parameter"]["Value"]
    secret = secretsmanager.get_secret_value(SecretId=f"api-key-{stage}")["SecretString"]
    api_key = json.loads(secret)["apikey"]
    return AnimlApiClient(url=url, api_key=api_key, timeout=timeout or DEFAULT_TIMEOUT_SECONDS)
