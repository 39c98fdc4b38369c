"""Reason codes: why an image was dead-lettered or skipped. One place, used everywhere."""

from __future__ import annotations

from collections.abc import Mapping


class Rejected(Exception):
    """A file or archive entry that will not be ingested: `reason` (a code below) says why,
    the message gives the detail. One type for every check: the archive's, the image's."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# Dead-letter reasons named by the API contract.
MULTIPLE_ERRORS = "MULTIPLE_ERRORS"
DUPLICATE_IMAGE = "DUPLICATE_IMAGE"
CORRUPTED_IMAGE_FILE = "CORRUPTED_IMAGE_FILE"
UNKNOWN_ID = "UNKNOWN_ID"

# Reasons found by our own checks, before the API is called.
EMPTY_FILE = "EMPTY_FILE"
NOT_AN_IMAGE = "NOT_AN_IMAGE"
VIDEO_FILE = "VIDEO_FILE"
UNSUPPORTED_IMAGE_TYPE = "UNSUPPORTED_IMAGE_TYPE"
IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
TOO_MANY_PIXELS = "TOO_MANY_PIXELS"
UNSUPPORTED_COMPRESSION = "UNSUPPORTED_COMPRESSION"
ENCRYPTED_ENTRY = "ENCRYPTED_ENTRY"
COMPRESSION_RATIO_TOO_HIGH = "COMPRESSION_RATIO_TOO_HIGH"  # a zip bomb's signature
BATCH_TOO_LARGE = "BATCH_UNCOMPRESSED_SIZE_LIMIT"

# Skipped archive entries (not images at all, or not meant to be).
SKIPPED_DIRECTORY = "DIRECTORY"
SKIPPED_HIDDEN = "HIDDEN_FILE"
SKIPPED_UNSUPPORTED_TYPE = "UNSUPPORTED_FILE_TYPE"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".3gp", ".wmv")


# What createImage's validation answers (then nothing was saved), besides our own md.errors.
VALIDATION_ERRORS = frozenset({"Unknown Serial Number", "Unknown DateTimeOriginal",
                               "Image Size Exceed 8 MB"})


def is_duplicate(error: str) -> bool:
    return "E11000" in error


def api_warning(error: str) -> str:
    """An error createImage answered for an image it saved (e.g. its inference request)."""
    return f"saved, but the API reported: {error}"


def rejection_text(reason: str, detail: str) -> str:
    """The ImageError text for a file refused before createImage."""
    return f"{reason}: {detail}" if detail else reason


def not_images_text(counts: Mapping[str, int]) -> str:
    """The batch error for files that are not images: how many, and why."""
    how_many = sum(counts.values())
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    return (f"{how_many} file(s) in the archive are not images and were not ingested ({why}); "
            "they are kept in the dead-letter bucket")


def dead_letter_reason(errors: list[str]) -> str:
    """The dead-letter folder for the errors the API returned, as the contract names them."""
    if any(is_duplicate(e) for e in errors):
        return DUPLICATE_IMAGE
    if any("corrupt" in e.lower() for e in errors):
        return CORRUPTED_IMAGE_FILE
    if len(errors) > 1:
        return MULTIPLE_ERRORS
    return errors[0]


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)
