"""Camera-trap-like sample images made on the spot (no network): JPEGs with real EXIF."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import piexif
from PIL import Image, ImageDraw

SAMPLE_MAKE = "ACME TRAILCAMS"
SAMPLE_MODEL = "TC-1 SAMPLE"
SAMPLE_SERIAL = "SAMPLE-CAM-0001"


def sample_exif(taken: datetime, serial: str | None = SAMPLE_SERIAL) -> bytes:
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S").encode()
    zeroth = {piexif.ImageIFD.Make: SAMPLE_MAKE.encode(),
              piexif.ImageIFD.Model: SAMPLE_MODEL.encode(), piexif.ImageIFD.DateTime: stamp}
    exif = {piexif.ExifIFD.DateTimeOriginal: stamp}
    if serial:
        exif[piexif.ExifIFD.BodySerialNumber] = serial.encode()
    gps = {
        piexif.GPSIFD.GPSLatitudeRef: b"N",
        piexif.GPSIFD.GPSLatitude: ((34, 1), (25, 1), (3000, 100)),
        piexif.GPSIFD.GPSLongitudeRef: b"W",
        piexif.GPSIFD.GPSLongitude: ((119, 1), (42, 1), (0, 1)),
    }
    return piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps})


def sample_jpeg(path: Path, taken: datetime, seed: int, size: tuple[int, int] = (1920, 1080),
                serial: str | None = SAMPLE_SERIAL) -> Path:
    """A night-vision-grey scene with a bright 'animal' blob, saved with EXIF."""
    rng = random.Random(seed)
    image = Image.effect_noise(size, 40).convert("RGB")
    draw = ImageDraw.Draw(image)
    x, y = rng.randrange(size[0] - 300), rng.randrange(size[1] - 200)
    draw.ellipse((x, y, x + 300, y + 180), fill=(200, 190, 170))
    draw.text((20, size[1] - 40), taken.isoformat(sep=" "), fill=(255, 255, 255))
    image.save(path, format="JPEG", quality=85, exif=sample_exif(taken, serial))
    return path


def write_sample_folder(folder: Path, count: int = 12) -> list[Path]:
    """`count` images in two camera folders, one every few minutes, like a real card dump."""
    start = datetime(2024, 6, 1, 21, 15, 0)
    written = []
    for index in range(count):
        sub = folder / ("CAM01" if index % 2 == 0 else "CAM02")
        sub.mkdir(parents=True, exist_ok=True)
        taken = start + timedelta(minutes=7 * index)
        written.append(sample_jpeg(sub / f"IMG_{index + 1:04d}.JPG", taken, seed=index))
    return written
