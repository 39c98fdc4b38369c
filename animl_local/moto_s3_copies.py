"""Copies of moto's S3 objects (5.2) to local files, read from its store in this process.

A local run copies every serving and dead-letter object of its batch beside the report (3,000 for
1,000 photos). Through GetObject each copy cost 2-4 ms of CPU in botocore and moto's request
handling (signing, URL routing, parsing), under the GIL: 90% of the run's time after its
execution ended. Read from the store it costs the file's write. The bytes are the object's latest
version, as GetObject answers; what GetObject answers NoSuchKey or NoSuchBucket for is refused.
Local only: the embedded stage's buckets are moto's, in the process that runs the report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from moto.s3.models import s3_backends

CHUNK = 8 * 1024 * 1024  # a large dead-lettered file is not read into memory whole


class NoSuchObject(LookupError):
    """The bucket or the key is not in moto's S3 (GetObject would answer 404)."""


def copy_object(bucket: str, key: str, target: Path) -> None:
    """Write the object's bytes to `target` (its folder exists)."""
    found = s3_backends.bucket_accounts.get(bucket)  # (partition, account) of its owner
    if found is None:
        raise NoSuchObject(f"no bucket {bucket}")
    partition, account = found
    obj = s3_backends[account][partition].get_object(bucket, key)  # None for a delete marker
    if obj is None:
        raise NoSuchObject(f"no object s3://{bucket}/{key}")
    with obj.lock, target.open("wb") as copy:
        obj._value_buffer.seek(0)
        shutil.copyfileobj(obj._value_buffer, copy, CHUNK)
