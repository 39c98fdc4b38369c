"""Metadata checked against an independent reader: exiftool 12.57's output for every fixture."""

from __future__ import annotations

import csv

import pytest

from functions.image import metadata
from functions.image.ingest_image import ImageSource, prepare_image
from functions.platform.reasons import Rejected
from functions.platform.settings import Settings
from tests.conftest import CAMERA_TRAPS

SETTINGS = Settings(stage="test")


def oracle_rows() -> list[dict[str, str]]:
    with open(CAMERA_TRAPS / "expected-exiftool.tsv", newline="") as tsv:
        return list(csv.DictReader(tsv, delimiter="\t"))


def md_for(path: str) -> dict | None:
    data = (CAMERA_TRAPS / path).read_bytes()
    source = ImageSource(file_name=path.rsplit("/", 1)[-1], bucket="b", key=path)
    try:
        return prepare_image(data, source, SETTINGS).md
    except Rejected:
        return None


def test_the_oracle_covers_every_fixture() -> None:
    files = {p.relative_to(CAMERA_TRAPS).as_posix() for p in CAMERA_TRAPS.glob("*/*")}
    assert {row["path"] for row in oracle_rows()} == files
    assert len(files) == 37


@pytest.mark.parametrize("row", oracle_rows(), ids=lambda r: r["path"])
def test_metadata_matches_exiftool(row: dict[str, str]) -> None:
    md = md_for(row["path"])
    if md is None:  # the 0-byte files: nothing to read, and exiftool read nothing either
        assert all(row[k] == "-" for k in row if k != "path")
        return
    fields = metadata.read_metadata((CAMERA_TRAPS / row["path"]).read_bytes())
    for name in ("Make", "Model", "UserLabel"):
        assert fields.get(name, "-") == row[name], name
    # Serial: the maker note's (Reconyx) or standard tags; "" when the camera wrote a blank one.
    assert fields.get("SerialNumber", "-") == row["SerialNumber"]
    assert md["SerialNumber"] == (row["SerialNumber"] if row["SerialNumber"] not in ("-", "")
                                  else "unknown")
    expected_date = row["DateTimeOriginal"]
    assert md.get("DateTimeOriginal", "-") == (
        "-" if expected_date == "-" else expected_date.replace(":", "-", 2).replace(" ", "T"))
    assert (md["ImageWidth"], md["ImageHeight"]) == (int(row["ImageWidth"]),
                                                     int(row["ImageHeight"]))
    for name in ("GPSLatitude", "GPSLongitude"):
        if row[name] == "-":
            assert name not in md
        else:
            assert md[name] == pytest.approx(float(row[name]), abs=1e-6)


def test_reconyx_maker_notes_give_the_documented_fields() -> None:
    fields = metadata.read_metadata((CAMERA_TRAPS / "BUOW/IMG_0919.JPG").read_bytes())
    assert fields["TriggerMode"] == "Motion Detection"
    assert fields["Sequence"] == "1 of 3"
    assert fields["MoonPhase"] == "Full"
    assert fields["MakerNoteDateTimeOriginal"] == fields["DateTimeOriginal"]
    assert isinstance(fields["AmbientTemperature"], int)
    hf2 = metadata.read_metadata((CAMERA_TRAPS / "BUOW/RCNX0242.JPG").read_bytes())
    assert (hf2["SerialNumber"], hf2["UserLabel"], hf2["Sequence"]) == (
        "HLPXEL09018058", "R49", "2 of 3")


def test_a_garbage_maker_note_date_never_replaces_a_valid_exif_date() -> None:
    fields = {"DateTimeOriginal": "2021:08:09 03:55:47",
              "MakerNoteDateTimeOriginal": "2000:01:01 00:00:00"}
    assert metadata.date_time_original(fields) == "2021-08-09T03:55:47"
    assert metadata.date_time_original({"DateTimeOriginal": "0000:00:00 00:00:00",
                                        "MakerNoteDateTimeOriginal": "2020:01:02 03:04:05"}) == (
        "2020-01-02T03:04:05")


@pytest.mark.parametrize("raw, iso", [
    ("2020:04:16 10:10:32", "2020-04-16T10:10:32"),
    ("0000:00:00 00:00:00", None),
    ("2020:13:01 00:00:00", None),
    ("garbage", None),
    (None, None),
])
def test_exif_dates_become_iso_without_offset(raw, iso) -> None:
    assert metadata.iso_datetime(raw) == iso


def test_no_exif_is_an_empty_dict_not_an_error() -> None:
    assert metadata.read_metadata(b"not an image") == {}
