"""An image's metadata as the fields the Animl API reads from `md`, by exiftool's names.

Standard IFDs come from our EXIF reader (`exif_reader`) with piexif's tag tables for names;
camera-trap maker notes and comments from `maker_notes`. Every tag is kept by its standard name
when its value is printable; binary blobs are left out.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import piexif

from functions.image import maker_notes
from functions.image.exif_reader import ExifData, read_exif_data

_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
# Tags that are structure or blobs, never useful as text.
_SKIPPED_TAGS = {"MakerNote", "ExifTag", "GPSTag", "InteroperabilityTag", "JPEGInterchangeFormat",
                 "JPEGInterchangeFormatLength", "PrintImageMatching", "StripOffsets",
                 "StripByteCounts", "UserComment"}
# piexif's name -> exiftool's, where they differ for fields the API reads.
_EXIFTOOL_NAMES = {"BodySerialNumber": "SerialNumber", "ISOSpeedRatings": "ISO",
                   "PixelXDimension": "ExifImageWidth", "PixelYDimension": "ExifImageHeight",
                   "ImageLength": "ImageHeight"}
MAKER_NOTE_TAG = piexif.ExifIFD.MakerNote
USER_COMMENT_TAG = piexif.ExifIFD.UserComment


def read_metadata(data: bytes) -> dict[str, Any]:
    """All fields we can read, first occurrence winning; {} for a file with no metadata."""
    exif = read_exif_data(data)
    fields: dict[str, Any] = {}
    maker_note = exif.get("Exif", MAKER_NOTE_TAG)
    if isinstance(maker_note, bytes) and maker_notes.is_reconyx(maker_note):
        # The maker note's serial is the camera's; it wins over anything else.
        fields.update(maker_notes.reconyx_fields(maker_note))
        if not exif.get("0th", piexif.ImageIFD.Make):
            fields["Make"] = "RECONYX"  # recognised by its maker note alone
    for name, value in _standard_tags(exif).items():
        fields.setdefault(name, value)
    fields.update(_gps_decimal(exif.ifds.get("GPS", {})))
    _add_comment_fields(exif, fields)
    return fields


def iso_datetime(exif_date: Any) -> str | None:
    """`YYYY:MM:DD HH:MM:SS` -> `YYYY-MM-DDTHH:MM:SS` (no offset, as the API expects)."""
    match = _EXIF_DATE.match(str(exif_date or ""))
    if not match:
        return None
    y, mo, d, h, mi, s = (int(g) for g in match.groups())
    if y < 1900 or not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"


def date_time_original(fields: dict[str, Any]) -> str | None:
    """EXIF's DateTimeOriginal; the maker note's only when EXIF has no valid one."""
    return iso_datetime(fields.get("DateTimeOriginal")) or iso_datetime(
        fields.get("MakerNoteDateTimeOriginal")
    )


def serial_number(fields: dict[str, Any]) -> str | None:
    value = fields.get("SerialNumber")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _standard_tags(exif: ExifData) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for ifd in ("0th", "Exif", "GPS"):
        for tag, raw in exif.ifds.get(ifd, {}).items():
            name = piexif.TAGS.get(ifd, {}).get(tag, {}).get("name")
            if not name or name in _SKIPPED_TAGS:
                continue
            name = _EXIFTOOL_NAMES.get(name, name)
            value = _printable(raw)
            if value is not None and name not in tags:
                tags[name] = value
    return tags


def _add_comment_fields(exif: ExifData, fields: dict[str, Any]) -> None:
    for raw in exif.comments:
        comment = raw.rstrip(b"\x00").decode("latin-1").strip()
        if comment:
            fields.setdefault("Comment", comment)
            for name, value in maker_notes.buckeye_fields(comment).items():
                fields.setdefault(name, value)
    raw_user_comment = exif.get("Exif", USER_COMMENT_TAG)
    if isinstance(raw_user_comment, bytes):
        user_comment = maker_notes.decode_user_comment(raw_user_comment)
        if user_comment:
            fields.setdefault("UserComment", user_comment)
            serial = maker_notes.cuddeback_serial(user_comment)
            if serial:
                fields.setdefault("SerialNumber", serial)


def _printable(raw: Any) -> Any:
    if isinstance(raw, bytes):
        try:
            text = raw.rstrip(b"\x00 ").decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text.strip() if text.isprintable() else None
    if isinstance(raw, int | float):
        return raw
    if isinstance(raw, tuple):
        if len(raw) == 2 and all(isinstance(v, int) for v in raw):
            return _rational(raw)
        if len(raw) <= 16 and all(isinstance(v, int) for v in raw):
            return list(raw)
        if len(raw) <= 16 and all(isinstance(v, tuple) and len(v) == 2 for v in raw):
            return [_rational(v) for v in raw]
    return None


def _rational(pair: tuple[int, int]) -> float | None:
    numerator, denominator = pair
    if denominator == 0:
        return None
    return round(float(Fraction(numerator, denominator)), 8)


def _gps_decimal(gps: dict[int, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for value_tag, ref_tag, name, negative in (
        (piexif.GPSIFD.GPSLatitude, piexif.GPSIFD.GPSLatitudeRef, "GPSLatitude", b"S"),
        (piexif.GPSIFD.GPSLongitude, piexif.GPSIFD.GPSLongitudeRef, "GPSLongitude", b"W"),
    ):
        degrees = _degrees(gps.get(value_tag))
        if degrees is not None:
            ref = gps.get(ref_tag) or b""
            out[name] = -degrees if bytes(ref)[:1] == negative else degrees
    altitude = gps.get(piexif.GPSIFD.GPSAltitude)
    if isinstance(altitude, tuple) and len(altitude) == 2 and altitude[1]:
        below_sea = gps.get(piexif.GPSIFD.GPSAltitudeRef) in (1, b"\x01")
        out["GPSAltitude"] = (-1 if below_sea else 1) * altitude[0] / altitude[1]
    return out


def _degrees(dms: Any) -> float | None:
    try:
        d, m, s = (n / den if den else 0.0 for n, den in dms)
    except (TypeError, ValueError):
        return None
    return round(d + m / 60 + s / 3600, 10)
