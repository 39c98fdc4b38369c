"""The unit of work for one image, shared by the batch worker and the single-image path.

bytes -> type check -> EXIF -> md5 -> renditions -> createImage -> serving copies or dead-letter.
A bad image is an outcome, never an exception; only transient failures (S3, API unavailable) raise,
so that the caller's Retry can run the whole unit again, which converges (see `_saved_as_ours`).
"""

from __future__ import annotations

import hashlib
import posixpath
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

from functions.image import metadata
from functions.image.image_checks import ImageType, sniff_image_type
from functions.image.renditions import ImageUndecodable, Rendered, render
from functions.platform import logs, reasons, storage
from functions.platform.budget import ByteBudget
from functions.platform.graphql_client import AnimlApiClient, AnimlApiRejected
from functions.platform.reasons import Rejected
from functions.platform.settings import Settings

logger = logs.get_logger(__name__)

INGESTED = "ingested"
DEAD_LETTER = "dead-letter"
SKIPPED = "skipped"


@dataclass(frozen=True)
class ImageSource:
    """Where the bytes came from: a batch entry (`path` inside the zip) or a single object."""

    file_name: str
    bucket: str
    key: str
    batch_id: str | None = None
    path: str | None = None
    # What tells this source from any other with the same name (`storage.entry_origin`); None
    # for a single image, whose origin is its bytes' md5 (`storage.single_origin`).
    origin: str | None = None
    # The batch's project (from ingest's batch record), where this file's image is
    # `<project_id>:<md5>`: after a createImage whose answer was lost, the image is looked up
    # there instead of sent again (which would answer E11000 and make the service record an
    # ImageError for the collision with our own image). None for a single image: its project
    # is the service's choice (the camera's), unknown to ingest.
    project_id: str | None = None
    # A retried group: an earlier attempt may have saved this image (or recorded its
    # rejection), so it is looked for before createImage (or createImageError).
    retried: bool = False
    # An earlier entry of the archive has this path and these bytes: that one is the image,
    # this one its duplicate (never "ours" when createImage answers E11000).
    repeats_earlier_entry: bool = False

    def origin_of(self, data: bytes) -> str:
        return self.origin or storage.single_origin(hashlib.md5(data).hexdigest())


@dataclass
class Outcome:
    path: str
    outcome: str
    reason: str | None = None
    id: str | None = None
    md: dict[str, Any] | None = None
    detail: str | None = None
    keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. ingested, but truncated
    origin: str | None = None  # the source's origin: what `reprocess` rebuilds it from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Services:
    """The clients the unit of work talks to, passed explicitly.

    `image_pool`: where the CPU-bound image work runs (a process pool locally, so both cores
    work while the engine's threads share one interpreter); None runs it in the caller.
    `decode_budget`: what the caller's threads may decode at once (unused in an image pool,
    whose processes decode one image each).
    """

    s3: Any
    api: AnimlApiClient
    settings: Settings
    image_pool: Executor | None = None
    decode_budget: ByteBudget | None = None


@dataclass(frozen=True)
class Prepared:
    """An image checked, described and rendered: everything before the API call."""

    image_type: ImageType
    rendered: Rendered
    md: dict[str, Any]


def prepare_image(data: bytes, source: ImageSource, settings: Settings,
                  budget: ByteBudget | None = None) -> Prepared:
    """Checks, metadata, md5 and renditions; Rejected for files we never send to the API.

    An undecodable image is refused here rather than sent with `md.errors`: createImage would add
    its own errors (no serial, no date) and count one bad file several times among the batch's
    imageErrors. It gets exactly one ImageError instead (`record_rejection`).
    """
    image_type = sniff_image_type(data, settings.max_image_bytes)
    try:
        rendered = render(data, image_type, settings.max_image_pixels, budget)
    except ImageUndecodable as exc:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, str(exc)) from None
    md = build_md(data, image_type, source, rendered, settings)
    return Prepared(image_type, rendered, md)


@dataclass(frozen=True)
class Rejection:
    """An Rejected as a value, so it crosses a process boundary intact."""

    reason: str
    detail: str


def prepare_or_reject(data: bytes, source: ImageSource, settings: Settings,
                      budget: ByteBudget | None = None) -> Prepared | Rejection:
    """The CPU-bound half of the unit of work: picklable in and out (for a process pool, which
    gets no `budget`)."""
    try:
        return prepare_image(data, source, settings, budget)
    except Rejected as rejected:
        return Rejection(rejected.reason, str(rejected))


def ingest_image(data: bytes, source: ImageSource, services: Services,
                 prepared: Prepared | Rejection | None = None) -> Outcome:
    """Ingest one image end to end and return its outcome (`prepared`: done elsewhere)."""
    if prepared is None:
        prepared = prepare_or_reject(data, source, services.settings, services.decode_budget)
    if isinstance(prepared, Rejection):
        return _reject_before_api(data, source, prepared.reason, prepared.detail, services)
    return record_image(data, source, prepared, services)


def record_image(data: bytes, source: ImageSource, prepared: Prepared, services: Services
                 ) -> Outcome:
    """The I/O half: createImage, then serving copies or dead-letter."""
    path = source.path or source.file_name
    image_type, rendered, md = prepared.image_type, prepared.rendered, prepared.md
    warnings = list(rendered.warnings)
    saved = _saved_earlier(source, md, services)
    if saved is not None:
        keys = _store_serving_copies(data, image_type, saved, rendered, services)
        return Outcome(path, INGESTED, None, saved, md, None, keys, warnings, source.origin)
    try:
        attempt = _create_image(source, md, services)
    except AnimlApiRejected as thrown:
        return _dead_letter_thrown(data, source, md, str(thrown), services)
    image_id = attempt["_id"]
    api_errors = [e["error"] for e in attempt.get("errors") or []]
    if api_errors and not _saved_as_ours(api_errors, source, md, image_id, services):
        reason = reasons.dead_letter_reason(api_errors)
        origin = source.origin_of(data)
        key = storage.dead_letter_key(reason, image_id, origin, source.file_name)
        _put(services, services.settings.dead_letter_bucket, key, data, image_type.mime_type)
        return Outcome(path, DEAD_LETTER, reason, image_id, md, "; ".join(api_errors), [key],
                       warnings, origin)
    # Errors that came with a saved image (a failed inference request) are warnings: the image
    # still needs its serving copies, or the web app shows a record without pictures.
    warnings += [reasons.api_warning(e) for e in api_errors if not reasons.is_duplicate(e)]
    keys = _store_serving_copies(data, image_type, image_id, rendered, services)
    return Outcome(path, INGESTED, None, image_id, md, None, keys, warnings, source.origin)


def build_md(data: bytes, image_type: ImageType, source: ImageSource, rendered: Rendered,
             settings: Settings) -> dict[str, Any]:
    """The `md` object createImage receives, with the contract's fields and defaults."""
    fields = metadata.read_metadata(data)
    md: dict[str, Any] = dict(fields)
    md.pop("DateTimeOriginal", None)
    date_time_original = metadata.date_time_original(fields)
    if date_time_original:
        md["DateTimeOriginal"] = date_time_original
    stem, extension = posixpath.splitext(source.file_name)
    md.update(
        {
            "Bucket": source.bucket,
            "Key": source.key,
            "FileName": stem + extension.lower(),
            "FileTypeExtension": image_type.extension,
            "MIMEType": image_type.mime_type,
            "batchId": source.batch_id,
            "Path": source.path,
            "ProdBucket": settings.serving_bucket,
            "Hash": hashlib.md5(data).hexdigest(),
            "ImageBytes": len(data),
            "Make": fields.get("Make") or "unknown",
            "SerialNumber": metadata.serial_number(fields) or "unknown",
            "errors": [],
        }
    )
    # The decoded size is the image's own, not EXIF's copy of it.
    md["ImageWidth"], md["ImageHeight"] = rendered.width, rendered.height
    return md


def _reject_before_api(data: bytes, source: ImageSource, reason: str, detail: str,
                      services: Services) -> Outcome:
    """Dead-letter a file our own checks refused, and count it as an ImageError of its batch."""
    path = source.path or source.file_name
    origin = source.origin_of(data)
    key = storage.rejected_key(reason, origin, path)
    _put(services, services.settings.dead_letter_bucket, key, data, "application/octet-stream")
    record_rejection(services.api, source, reason, detail)
    return Outcome(path, DEAD_LETTER, reason, None, None, detail, [key], origin=origin)


def record_rejection(api: AnimlApiClient, source: ImageSource, reason: str, detail: str
                     ) -> None:
    """createImageError for a batch file that never reached createImage, so that the web app's
    images + imageErrors add up to the batch's total. No image id exists, so `image` holds the
    file's path in the batch. Single images have no batch to count them (and the schema
    requires one).

    On a retried group, an earlier attempt may have recorded it and failed before storing the
    entry's outcome: it is looked up first, and recorded only if absent."""
    if not source.batch_id:
        return
    path = source.path or source.file_name
    error = reasons.rejection_text(reason, detail)
    if source.retried and api.find_image_error(path, source.batch_id, error) is not None:
        return
    api.create_image_error(image=path, batch_id=source.batch_id, error=error)


def _dead_letter_thrown(data: bytes, source: ImageSource, md: dict[str, Any], message: str,
                        services: Services) -> Outcome:
    path = source.path or source.file_name
    origin = source.origin_of(data)
    key = storage.dead_letter_key(message, None, origin, source.file_name)
    _put(services, services.settings.dead_letter_bucket, key, data, md["MIMEType"])
    # With no image id, createImageError cannot be called (the schema requires `image`).
    return Outcome(path, DEAD_LETTER, message, None, md, message, [key], origin=origin)


def _saved_earlier(source: ImageSource, md: dict[str, Any], services: Services) -> str | None:
    """On a retry, the id of this very file's image if an earlier attempt saved it."""
    if not source.retried:
        return None
    return _find_own_image(source, md, services)


def _find_own_image(source: ImageSource, md: dict[str, Any], services: Services) -> str | None:
    """The id of this very file's image if it is saved (None when its project is unknown, or
    the entry repeats an earlier one, whose image would look like its own)."""
    if not source.project_id or source.repeats_earlier_entry:
        return None
    image_id = f"{source.project_id}:{md['Hash']}"
    return image_id if _is_ours(services.api.get_image(image_id), md) else None


def _create_image(source: ImageSource, md: dict[str, Any], services: Services
                  ) -> dict[str, Any]:
    """createImage, never sent again once it saved the image: after a failure that may have
    followed the save (its answer lost), the image is looked up first.

    A single image (no batch, its project unknown) and a repeated entry are retried as they
    stand: a lost answer then costs one E11000 ImageError, recognised as ours (or, for a
    repeat, the duplicate it is); a single image's is on no batch, so no batch's count shows it.
    """
    if not source.project_id or source.repeats_earlier_entry:
        return services.api.create_image(md)

    def saved_already() -> dict[str, Any] | None:
        image_id = _find_own_image(source, md, services)
        return None if image_id is None else {"_id": image_id, "errors": []}

    return services.api.create_image(md, saved_already)


def _is_ours(image: dict[str, Any] | None, md: dict[str, Any]) -> bool:
    """Whether an image record is this file's: same batch, path and file name (and, by its id,
    the same bytes)."""
    mine = (md["batchId"], md["Path"], md["FileName"])
    found = image or {}
    return (found.get("batchId"), found.get("path"), found.get("originalFileName")) == mine


def _saved_as_ours(api_errors: list[str], source: ImageSource, md: dict[str, Any],
                   image_id: str, services: Services) -> bool:
    """Whether createImage saved this very file although it answered errors.

    It does when the errors came after the save (the inference request failed), or when the
    save collided with our own earlier attempt (a retry: E11000). A validation error means
    nothing was saved, so only other answers cost the `image` read that tells.
    """
    if source.repeats_earlier_entry or any(e in reasons.VALIDATION_ERRORS for e in api_errors):
        return False
    return _is_ours(services.api.get_image(image_id), md)


def _store_serving_copies(data: bytes, image_type: ImageType, image_id: str, rendered: Rendered,
                          services: Services) -> list[str]:
    bucket = services.settings.serving_bucket
    bodies = {"original": data, "medium": rendered.medium, "small": rendered.small}
    keys = []
    for rendition in storage.RENDITIONS:
        key = storage.serving_key(image_id, rendition, image_type.extension)
        _put(services, bucket, key, bodies[rendition], image_type.mime_type)
        keys.append(key)
    return keys


def _put(services: Services, bucket: str, key: str, body: bytes, content_type: str) -> None:
    services.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
