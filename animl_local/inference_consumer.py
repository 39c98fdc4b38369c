"""A stand-in for the API's `batchinference` Lambda, behind each batch's queue mapping.

It "runs" the model by recording a label on each image through the stand-in API (with
createInternalLabels, as the real worker does), then reports
no failures. A message whose body asks for it (`"fail": true`) is reported failed, so tests can
send messages to the dead-letter queue the way a broken model would.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import boto3

from functions.platform.graphql_client import client_for_stage
from functions.platform.settings import Settings

CREATE_INTERNAL_LABELS = """
mutation CreateInternalLabels($input: CreateInternalLabelsInput!) {
  createInternalLabels(input: $input) { isOk }
}"""
MODEL_VERSION = "v5.0a"
WHOLE_IMAGE = [0.0, 0.0, 1.0, 1.0]


@functools.cache
def _clients(region: str, endpoint: str | None) -> tuple[Any, Any]:
    # Creating clients is the slow part and moto runs this once per queued message. They are
    # kept per endpoint (in-process moto, or a moto server); the API's URL and key are read on
    # every call, since a later local run has another stand-in API.
    return (boto3.client("ssm", region_name=region),
            boto3.client("secretsmanager", region_name=region))


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    clients = _clients(settings.region, os.environ.get("AWS_ENDPOINT_URL"))
    api = client_for_stage(*clients, settings.stage)
    failures = []
    for record in event.get("Records", []):
        request = json.loads(record["body"])
        if request.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        label = {"labelId": "animal", "conf": 0.9, "bbox": WHOLE_IMAGE,
                 "mlModel": request["mlModelId"], "mlModelVersion": MODEL_VERSION}
        api.execute(CREATE_INTERNAL_LABELS,
                    {"input": {"imageId": request["image"]["_id"], "labels": [label]}})
    return {"batchItemFailures": failures}
