"""A stand-in for the API's `batchinference` Lambda, behind each batch's queue mapping.

It "runs" the model by recording a label on each image through the stand-in API (with
createInternalLabels, as the real worker does), then reports
no failures. A message whose body asks for it (`"fail": true`) is reported failed, so tests can
send messages to the dead-letter queue the way a broken model would.
"""

from __future__ import annotations

import json
from typing import Any

from functions.platform.runtime import runtime

CREATE_INTERNAL_LABELS = """
mutation CreateInternalLabels($input: CreateInternalLabelsInput!) {
  createInternalLabels(input: $input) { isOk }
}"""
MODEL_VERSION = "v5.0a"
WHOLE_IMAGE = [0.0, 0.0, 1.0, 1.0]


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The stage's queue poller runs this for every batch of up to 10 requests: reading the
    # API's URL and key (SSM, Secrets Manager) each time would be most of its work. The
    # stage's container runtime reads them once; the engine starts each stage afresh.
    api = runtime().api()
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
