"""Camera-trap serial numbers where standard readers never look, from files we build."""

from __future__ import annotations

import io
import struct

import piexif
from PIL import Image

from functions.image import maker_notes, metadata
from tests.conftest import SHARED_FIXTURES


def jpeg_with(exif: dict | None = None, comment: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    kwargs = {}
    if exif is not None:
        kwargs["exif"] = piexif.dump(exif)
    if comment is not None:
        kwargs["comment"] = comment
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def hyperfire_note(serial: str, label: str) -> bytes:
    note = bytearray(108)
    note[0:2] = b"\x01\xf1"
    note[12:14] = b"M\x00"
    struct.pack_into("<6H", note, 22, 5, 4, 3, 6, 15, 2022)  # s, m, h, month, day, year
    struct.pack_into("<H", note, 36, 4)
    note[42:42 + 30] = serial.encode("utf-16-le").ljust(30, b"\x00")
    note[86:86 + 22] = label.encode().ljust(22, b"\x00")
    return bytes(note)


def test_a_reconyx_image_without_make_is_recognised_by_its_maker_note() -> None:
    data = jpeg_with({"Exif": {piexif.ExifIFD.MakerNote: hyperfire_note("H500ABC123", "TRAIL 4")}})
    fields = metadata.read_metadata(data)
    assert fields["Make"] == "RECONYX"
    assert (fields["SerialNumber"], fields["UserLabel"]) == ("H500ABC123", "TRAIL 4")
    assert fields["MakerNoteDateTimeOriginal"] == "2022:06:15 03:04:05"
    assert fields["MoonPhase"] == "Full"


def test_buckeye_serial_and_text_lines_come_from_the_jpeg_comment() -> None:
    comment = b"SN=BE12345\nTEXT1=North ridge\nTEXT2=Cam B\nSOURCE=X7D\n"
    fields = metadata.read_metadata(jpeg_with({"0th": {piexif.ImageIFD.Make: b"BuckEyeCam"}},
                                              comment=comment))
    assert fields["SerialNumber"] == "BE12345"
    assert (fields["TEXT1"], fields["TEXT2"], fields["SOURCE"]) == ("North ridge", "Cam B", "X7D")
    assert fields["Comment"].startswith("SN=BE12345")


def test_cuddeback_serial_comes_from_the_user_comment() -> None:
    user_comment = b"ASCII\x00\x00\x00" + b"ID=CUD-0042 LOC=Meadow"
    fields = metadata.read_metadata(jpeg_with({"Exif": {piexif.ExifIFD.UserComment: user_comment}}))
    assert fields["SerialNumber"] == "CUD-0042"
    assert fields["UserComment"] == "ID=CUD-0042 LOC=Meadow"


def test_the_standard_body_serial_number_is_the_serial() -> None:
    fields = metadata.read_metadata(
        jpeg_with({"Exif": {piexif.ExifIFD.BodySerialNumber: b"STD-77"}}))
    assert fields["SerialNumber"] == "STD-77"


def test_short_ascii_values_are_read_whole() -> None:
    # piexif's loader drops the last character when the count has no NUL; ours does not.
    data = (SHARED_FIXTURES / "camera-traps/Southwest/2021-05-28_SYFR0041_deer.JPG").read_bytes()
    assert metadata.read_metadata(data)["Make"] == "SY"


def test_truncated_or_foreign_maker_notes_are_ignored_not_fatal() -> None:
    truncated = maker_notes.reconyx_fields(b"RECONYXH2\x00" + b"\x00" * 10)
    assert "SerialNumber" not in truncated and "UserLabel" not in truncated
    assert maker_notes.reconyx_fields(b"Nikon\x00\x02") == {}
    assert not maker_notes.is_reconyx(b"\x01\xf1short")
