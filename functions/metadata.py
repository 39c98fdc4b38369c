"""EXIF metadata of an image, as the fields the Animl API reads from `md`.

Standard IFDs come from piexif, each tag under its standard name when its value is printable.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from typing import Any

import piexif

logger = logging.getLogger(__name__)

_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
# Tags whose values are binary blobs or structure, never useful as text.
_SKIPPED_TAGS = {"MakerNote", "ExifTag", "GPSTag", "InteroperabilityTag", "JPEGInterchangeFormat",
                 "JPEGInterchangeFormatLength", "PrintImageMatching"}
_SERIAL_TAGS = ("SerialNumber", "BodySerialNumber", "CameraSerialNumber")


def read_exif(data: bytes) -> dict[str, Any]:
    """Every printable EXIF tag by name, plus decimal GPS; {} when the file has no readable EXIF."""
    try:
        exif = piexif.load(data)
    except Exception as exc:  # piexif raises many kinds on malformed input
        logger.info("no readable EXIF: %s", type(exc).__name__)
        return {}
    tags: dict[str, Any] = {}
    for ifd in ("0th", "Exif", "GPS", "1st"):
        for tag, raw in (exif.get(ifd) or {}).items():
            name = piexif.TAGS.get(ifd, {}).get(tag, {}).get("name")
            if not name or name in _SKIPPED_TAGS or name in tags:
                continue  # first occurrence wins, as with the old stack
            value = _printable(raw)
            if value is not None:
                tags[name] = value
    tags.update(_gps_decimal(exif.get("GPS") or {}))
    return tags


def iso_datetime(exif_date: Any) -> str | None:
    """`YYYY:MM:DD HH:MM:SS` -> `YYYY-MM-DDTHH:MM:SS` (no offset, as the API expects)."""
    match = _EXIF_DATE.match(str(exif_date or ""))
    if not match:
        return None
    y, mo, d, h, mi, s = match.groups()
    if y == "0000" or not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31):
        return None
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}"


def serial_number(tags: dict[str, Any]) -> str | None:
    for name in _SERIAL_TAGS:
        value = tags.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _printable(raw: Any) -> Any:
    if isinstance(raw, bytes):
        text = raw.rstrip(b"\x00 ")
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return decoded.strip() if decoded.isprintable() else None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, tuple):
        if len(raw) == 2 and all(isinstance(v, int) for v in raw):
            return _rational(raw)
        if all(isinstance(v, int) for v in raw) and len(raw) <= 16:
            return list(raw)
        if all(isinstance(v, tuple) and len(v) == 2 for v in raw) and len(raw) <= 16:
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
            ref = gps.get(ref_tag, b"")
            out[name] = -degrees if ref[:1] == negative else degrees
    altitude = gps.get(piexif.GPSIFD.GPSAltitude)
    if isinstance(altitude, tuple) and len(altitude) == 2 and altitude[1]:
        below_sea = gps.get(piexif.GPSIFD.GPSAltitudeRef) == 1
        out["GPSAltitude"] = (-1 if below_sea else 1) * altitude[0] / altitude[1]
    return out


def _degrees(dms: Any) -> float | None:
    try:
        d, m, s = (n / den for n, den in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(d + m / 60 + s / 3600, 8)
