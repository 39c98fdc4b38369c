"""Step logic of the Animl ingest stack: plain functions, called by thin Lambda handlers.

Ships to Lambda. Subpackages, each importing only those listed before it:
- `platform`: what every step stands on: the stage's settings and reason codes, object keys, the
  one Animl API client, and the resources a Lambda container keeps between invocations;
- `archive`: reading a zip in S3 by ranged GETs, and planning its entries into groups;
- `image`: the unit of work for one image: checks, metadata, renditions, its record or its
  dead-letter object (the batch worker and the wireless single-image path share it);
- `batch`: the IngestBatch state machine's steps, ingest's own batch record, the batch's
  inference resources, and ending batches from outside their execution.
"""
