"""Camera-trap metadata that standard EXIF readers never look at.

Reconyx keeps the serial number and much else in fixed-layout maker notes (three layouts:
HyperFire, UltraFire, HyperFire 2; offsets as documented by Reconyx and exiftool's tables).
BuckEye writes `SN=` and TEXT1/TEXT2/SOURCE lines in the JPEG comment; Cuddeback writes `ID=` in
the EXIF UserComment. Every reader takes bytes and returns a dict of exiftool-named fields; a
field that does not decode is left out rather than guessed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any

MOON_PHASES = ("New", "New Crescent", "First Quarter", "Waxing Gibbous", "Full",
               "Waning Gibbous", "Last Quarter", "Old Crescent")
TRIGGER_MODES = {"C": "CodeLoc Not Entered", "E": "External Sensor", "M": "Motion Detection",
                 "T": "Time Lapse", "P": "Point and Shoot"}

HYPERFIRE_SIGNATURE = b"\x01\xf1"
ULTRAFIRE_SIGNATURE = b"RECONYXUF\x00"
HYPERFIRE2_SIGNATURE = b"RECONYXH2\x00"


def is_reconyx(maker_note: bytes | None) -> bool:
    return maker_note is not None and (
        maker_note.startswith((ULTRAFIRE_SIGNATURE, HYPERFIRE2_SIGNATURE))
        or (maker_note[:2] == HYPERFIRE_SIGNATURE and len(maker_note) >= 108)
    )


def reconyx_fields(maker_note: bytes) -> dict[str, Any]:
    """The maker note's fields by exiftool name; {} for a note that is not Reconyx."""
    if maker_note.startswith(HYPERFIRE2_SIGNATURE):
        reader = _hyperfire2
    elif maker_note.startswith(ULTRAFIRE_SIGNATURE):
        reader = _ultrafire
    elif is_reconyx(maker_note):
        reader = _hyperfire
    else:
        return {}
    # Reconyx notes are little-endian whatever the file's EXIF order (the HyperFire signature
    # is 0xf101 read so; the UltraFire fixture has big-endian EXIF and sane values only so).
    fields = reader(_Bytes(maker_note, "<"))
    # A blank text is kept (the camera wrote an empty label); an undecodable field is dropped.
    return {name: value for name, value in fields.items() if value is not None}


class _Bytes:
    """Bounds-checked reads at byte offsets; None past the end."""

    def __init__(self, data: bytes, order: str) -> None:
        self.data, self.order = data, order

    def ints(self, offset: int, fmt: str, count: int = 1) -> tuple[int, ...] | None:
        size = struct.calcsize(self.order + fmt) * count
        if offset + size > len(self.data):
            return None
        return struct.unpack(self.order + fmt * count, self.data[offset:offset + size])

    def number(self, offset: int, fmt: str) -> int | None:
        values = self.ints(offset, fmt)
        return values[0] if values else None

    def text(self, offset: int, length: int) -> str | None:
        raw = self.data[offset:offset + length]
        if len(raw) < length:
            return None
        return _clean(raw.split(b"\x00", 1)[0].decode("latin-1"))

    def utf16(self, offset: int, length: int) -> str | None:
        raw = self.data[offset:offset + length]
        if len(raw) < length:
            return None
        codec = "utf-16-le" if self.order == "<" else "utf-16-be"
        return _clean(raw.decode(codec, errors="ignore").split("\x00", 1)[0])


def _clean(text: str) -> str | None:
    text = text.strip()
    return text if text.isprintable() else None


def _date(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str | None:
    """Maker-note dates are less reliable than EXIF's: only a plausible one is kept."""
    if not (1990 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31 and hour < 24
            and minute < 60 and second < 60):
        return None
    return f"{year:04d}:{month:02d}:{day:02d} {hour:02d}:{minute:02d}:{second:02d}"


def _lookup(table: Any, key: Any) -> Any:
    try:
        return table[key]
    except (KeyError, IndexError, TypeError):
        return None


def _optional(value: Any, convert: Callable[[Any], Any]) -> Any:
    return None if value is None else convert(value)


def _hyperfire(b: _Bytes) -> dict[str, Any]:
    # Offsets are in 16-bit words in Reconyx's document; here in bytes.
    date = b.ints(22, "H", 6)
    sequence = b.ints(14, "H", 2)
    event = b.ints(18, "H", 2)
    return {
        "TriggerMode": _lookup(TRIGGER_MODES, b.text(12, 2)),
        "Sequence": sequence and f"{sequence[0]} of {sequence[1]}",
        "EventNumber": event and (event[0] << 16) + event[1],
        "MakerNoteDateTimeOriginal": date and _date(date[5], date[3], date[4], date[2], date[1],
                                                    date[0]),
        "MoonPhase": _lookup(MOON_PHASES, b.number(36, "H")),
        "AmbientTemperatureFahrenheit": b.number(38, "h"),
        "AmbientTemperature": b.number(40, "h"),
        "SerialNumber": b.utf16(42, 30),
        "Contrast": b.number(72, "H"),
        "Brightness": b.number(74, "H"),
        "Sharpness": b.number(76, "H"),
        "Saturation": b.number(78, "H"),
        "InfraredIlluminator": _lookup(("Off", "On"), b.number(80, "H")),
        "MotionSensitivity": b.number(82, "H"),
        "BatteryVoltage": _optional(b.number(84, "H"), lambda v: v / 1000),
        "UserLabel": b.text(86, 22),
    }


def _ultrafire(b: _Bytes) -> dict[str, Any]:
    date = b.ints(0x3B, "B", 7)
    sequence = b.ints(0x35, "B", 2)
    return {
        "TriggerMode": _lookup(TRIGGER_MODES, b.text(0x34, 1)),
        "Sequence": sequence and f"{sequence[0]} of {sequence[1]}",
        "EventNumber": b.number(0x37, "L"),
        "MakerNoteDateTimeOriginal": date and _date(date[5] + 256 * date[6], date[4], date[3],
                                                    date[2], date[1], date[0]),
        "MoonPhase": _lookup(MOON_PHASES, b.number(0x43, "B")),
        "AmbientTemperatureFahrenheit": b.number(0x44, "h"),
        "AmbientTemperature": b.number(0x46, "h"),
        "Illumination": _lookup(("Off", "On"), b.number(0x48, "B")),
        "BatteryVoltage": _optional(b.number(0x49, "H"), lambda v: v / 1000),
        "SerialNumber": b.text(0x4B, 15),
        "UserLabel": b.text(0x5A, 21),
    }


def _hyperfire2(b: _Bytes) -> dict[str, Any]:
    date = b.ints(0x3E, "H", 6)
    sequence = b.ints(0x36, "H", 2)
    event = b.ints(0x3A, "H", 2)
    return {
        "FileNumber": b.number(0x10, "H"),
        "DirectoryNumber": b.number(0x12, "H"),
        "TriggerMode": _lookup(TRIGGER_MODES, b.text(0x34, 2)),
        "Sequence": sequence and f"{sequence[0]} of {sequence[1]}",
        "EventNumber": event and (event[0] << 16) + event[1],
        "MakerNoteDateTimeOriginal": date and _date(date[5], date[4], date[3], date[2], date[1],
                                                    date[0]),
        "MoonPhase": _lookup(MOON_PHASES, b.number(0x4C, "H")),
        "AmbientTemperatureFahrenheit": b.number(0x4E, "h"),
        "AmbientTemperature": b.number(0x50, "h"),
        "Contrast": b.number(0x52, "H"),
        "Brightness": b.number(0x54, "H"),
        "Sharpness": b.number(0x56, "H"),
        "Saturation": b.number(0x58, "H"),
        "Flash": _lookup(("Off", "On"), b.number(0x5A, "H")),
        "AmbientInfrared": b.number(0x5C, "H"),
        "AmbientLight": b.number(0x5E, "H"),
        "MotionSensitivity": b.number(0x60, "H"),
        "BatteryVoltage": b.number(0x62, "H"),
        "BatteryVoltageAvg": b.number(0x64, "H"),
        "BatteryType": b.number(0x66, "H"),
        "UserLabel": b.text(0x68, 22),
        "SerialNumber": b.utf16(0x7E, 30),
    }


_KEY_VALUE_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")


def buckeye_fields(comment: str) -> dict[str, str]:
    """`SN=...`, `TEXT1=...`, `TEXT2=...`, `SOURCE=...` lines of a BuckEyeCam JPEG comment."""
    values = {}
    for line in re.split(r"[\r\n]+", comment):
        match = _KEY_VALUE_LINE.match(line)
        if match:
            values[match.group(1).upper()] = match.group(2)
    fields: dict[str, str] = {}
    if values.get("SN"):
        fields["SerialNumber"] = values["SN"]
    for key in ("TEXT1", "TEXT2", "SOURCE"):
        if key in values:
            fields[key] = values[key]
    return fields


_CUDDEBACK_ID = re.compile(r"(?:^|[\s;,])ID=([^\s;,]+)")


def cuddeback_serial(user_comment: str) -> str | None:
    match = _CUDDEBACK_ID.search(user_comment)
    return match.group(1) if match else None


def decode_user_comment(raw: bytes) -> str | None:
    """EXIF UserComment: an 8-byte character-code prefix, then the text."""
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        text = body.decode("utf-16-be" if body[:1] == b"\x00" else "utf-16-le", errors="ignore")
    elif prefix.startswith((b"ASCII", b"\x00" * 8)) or not prefix.strip(b"\x00 "):
        text = body.decode("latin-1")
    else:
        text = raw.decode("latin-1")
    text = text.replace("\x00", "").strip()
    return text if text and text.isprintable() else None
