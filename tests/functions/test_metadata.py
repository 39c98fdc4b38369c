"""EXIF read by piexif, checked against an independent reader (exiftool's output)."""

from __future__ import annotations

import csv

import pytest

from functions import metadata
from tests.conftest import CAMERA_TRAPS


def oracle_rows() -> list[dict[str, str]]:
    with open(CAMERA_TRAPS / "expected-exiftool.tsv", newline="") as tsv:
        return list(csv.DictReader(tsv, delimiter="\t"))


@pytest.mark.parametrize("row", oracle_rows(), ids=lambda r: r["path"])
def test_date_time_original_matches_exiftool(row: dict[str, str]) -> None:
    tags = metadata.read_exif((CAMERA_TRAPS / row["path"]).read_bytes())
    expected_date = row["DateTimeOriginal"]
    got = metadata.iso_datetime(tags.get("DateTimeOriginal"))
    if expected_date == "-":
        assert got is None
    else:
        assert got == expected_date.replace(":", "-", 2).replace(" ", "T")


@pytest.mark.parametrize("raw, iso", [
    ("2020:04:16 10:10:32", "2020-04-16T10:10:32"),
    ("0000:00:00 00:00:00", None),
    ("2020:13:01 00:00:00", None),
    ("garbage", None),
    (None, None),
])
def test_exif_dates_become_iso_without_offset(raw, iso) -> None:
    assert metadata.iso_datetime(raw) == iso


def test_gps_is_decimal_degrees_with_sign() -> None:
    import piexif

    gps = {piexif.GPSIFD.GPSLatitudeRef: b"S",
           piexif.GPSIFD.GPSLatitude: ((34, 1), (30, 1), (0, 1)),
           piexif.GPSIFD.GPSLongitudeRef: b"W",
           piexif.GPSIFD.GPSLongitude: ((119, 1), (15, 1), (36, 1))}
    assert metadata._gps_decimal(gps) == {"GPSLatitude": -34.5, "GPSLongitude": -119.26}


def test_no_exif_is_an_empty_dict_not_an_error() -> None:
    assert metadata.read_exif(b"not an image") == {}
