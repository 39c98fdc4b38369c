"""The wireless-camera path: one image object in the ingestion bucket."""

from __future__ import annotations

import posixpath

from functions.image.ingest_image import ImageSource, Outcome, Services, ingest_image


def ingest_single_image(services: Services, bucket: str, key: str) -> Outcome | None:
    """Ingest (or, in maintenance mode, park) one object, then delete the source object."""
    s3 = services.s3
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None  # a repeated event for an object already handled
    if services.settings.maintenance_mode:
        s3.put_object(Bucket=services.settings.parking_lot_bucket, Key=key, Body=data)
        outcome = None
    else:
        source = ImageSource(file_name=posixpath.basename(key), bucket=bucket, key=key)
        outcome = ingest_image(data, source, services)
    # Only now, with the outcome stored, is the source object released.
    s3.delete_object(Bucket=bucket, Key=key)
    return outcome
