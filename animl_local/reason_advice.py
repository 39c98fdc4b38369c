"""What a person can do about each reason a file was not ingested, keyed by the codes in
`functions.platform.reasons` (and the API's validation messages, which are reasons too).

Local only: the advice names this CLI's commands, which never ship to Lambda. A test checks that
every reason code has an entry here, so a new code cannot reach the report without advice.
"""

from __future__ import annotations

from functions.platform import reasons

UNKNOWN_SERIAL = "Unknown Serial Number"
UNKNOWN_DATE = "Unknown DateTimeOriginal"
API_SIZE_LIMIT = "Image Size Exceed 8 MB"

ADVICE: dict[str, str] = {
    UNKNOWN_SERIAL: (
        "The camera wrote no serial number into these photos and the batch named none, so Animl "
        "cannot tell which camera (and deployment) took them. Upload them again with the "
        "camera's serial: animl-ingest run FOLDER --serial SERIAL (the web app's \"override "
        "serial\"), one upload per camera; the camera column below shows which photos belong "
        "together."),
    UNKNOWN_DATE: (
        "The photos carry no capture date (EXIF DateTimeOriginal), which Animl needs to place "
        "them in a deployment. Check the camera's clock setting; the date can be written into "
        "the files (e.g. with exiftool) before uploading them again."),
    API_SIZE_LIMIT: (
        "The Animl API refuses files of 8 MB or more. Lower the camera's image quality or "
        "resize these files, then upload them again."),
    reasons.MULTIPLE_ERRORS: (
        "Several problems at once; each image's row lists them. The advice for each problem is "
        "in its own row of this table."),
    reasons.DUPLICATE_IMAGE: (
        "The very same file (same content) is already in this Animl project, from an earlier "
        "upload or from elsewhere in this one, so it was not added twice. Nothing to do."),
    reasons.CORRUPTED_IMAGE_FILE: (
        "The file is damaged and cannot be decoded (often a bad read from the SD card). Copy it "
        "from the card again if you still have it."),
    reasons.EMPTY_FILE: (
        "The file is empty (0 bytes): the camera or the copy from the card failed. Copy it from "
        "the card again if you still have it."),
    reasons.NOT_AN_IMAGE: (
        "The file is named like an image but holds something else. Check where it came from; "
        "it is kept in the dead-letter bucket."),
    reasons.VIDEO_FILE: (
        "Animl ingests photos, not videos. Kept in the dead-letter bucket; nothing to do unless "
        "the camera should be set to photo mode."),
    reasons.UNSUPPORTED_IMAGE_TYPE: (
        "Only JPEG and PNG photos are ingested (this is e.g. TIFF or WebP). Convert them to JPEG "
        "and upload them again."),
    reasons.IMAGE_TOO_LARGE: (
        "The file is over the size limit for one image. Resize it or lower its quality, then "
        "upload it again."),
    reasons.TOO_MANY_PIXELS: (
        "The image has more pixels than ingest accepts. Resize it, then upload it again."),
    reasons.UNSUPPORTED_COMPRESSION: (
        "The zip uses a compression method ingest cannot read. Zip the folder again with a "
        "standard tool (or upload the folder: animl-ingest run FOLDER)."),
    reasons.ENCRYPTED_ENTRY: (
        "The zip entry is password-protected. Zip the folder again without a password."),
    reasons.COMPRESSION_RATIO_TOO_HIGH: (
        "The entry inflates far more than any photo does (the signature of a zip bomb), so it "
        "was not opened. Zip the original files again."),
    reasons.BATCH_TOO_LARGE: (
        "The archive is larger, uncompressed, than one batch may be. Split it into smaller "
        "uploads."),
    reasons.SKIPPED_DIRECTORY: "A folder entry of the zip, not a file. Nothing to do.",
    reasons.SKIPPED_HIDDEN: (
        "A hidden system file (e.g. .DS_Store, Thumbs.db), not a photo. Nothing to do."),
    reasons.SKIPPED_UNSUPPORTED_TYPE: (
        "Not a photo (a document or another kind of file); not counted in the batch and kept in "
        "the dead-letter bucket. Nothing to do."),
}

# Any other reason is a message the Animl API threw: nothing was saved for these images.
API_REFUSED_ADVICE = (
    "The Animl API refused these images with this message (see each image's detail). Once the "
    "cause is fixed, send them again with animl-ingest reprocess.")


def advice_for(reason: str) -> str:
    """What to do about `reason`: its own advice, or the general advice for API refusals."""
    return ADVICE.get(reason, API_REFUSED_ADVICE)
