"""One reduced decode, two renditions that fit their boxes, formats kept."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat

from functions.image.image_checks import JPEG, PNG
from functions.image.renditions import (
    DECODE_BYTES_PER_PIXEL,
    MEDIUM_SIZE,
    SMALL_SIZE,
    ImageUndecodable,
    _fit,
    _fitted,
    render,
    thumbnail_size,
)
from functions.platform import reasons
from functions.platform.budget import ByteBudget
from functions.platform.reasons import Rejected
from tests.conftest import CAMERA_TRAPS, REPO, jpeg_bytes


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize("path", sorted((CAMERA_TRAPS / "BUOW").glob("*.JPG"))[:5],
                         ids=lambda p: p.name)
def test_camera_trap_renditions_fit_their_boxes(path: Path) -> None:
    rendered = render(path.read_bytes(), JPEG, max_pixels=10**8)
    medium, small = size_of(rendered.medium), size_of(rendered.small)
    assert max(medium) == 940 and max(small) == 120
    assert Image.open(io.BytesIO(rendered.medium)).format == "JPEG"
    assert (rendered.width, rendered.height) == Image.open(path).size


def test_png_stays_png_with_its_alpha() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (2000, 1000), (10, 20, 30, 128)).save(buffer, format="PNG")
    rendered = render(buffer.getvalue(), PNG, max_pixels=10**8)
    medium = Image.open(io.BytesIO(rendered.medium))
    assert (medium.format, medium.mode, medium.size) == ("PNG", "RGBA", (940, 470))


def test_too_many_pixels_is_rejected_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(Rejected) as rejected:
        render(jpeg_bytes(tmp_path, size=(1000, 1000)), JPEG, max_pixels=999_999)
    assert rejected.value.reason == reasons.TOO_MANY_PIXELS


def test_an_undecodable_jpeg_is_reported_as_corrupted() -> None:
    with pytest.raises(ImageUndecodable, match="corrupted image file"):
        render(b"\xff\xd8\xff\xe0" + b"\x00" * 100, JPEG, max_pixels=10**8)


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def centre_pixel(data: bytes) -> tuple:
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    return image.getpixel((image.width // 2, image.height // 2))


def close(a: tuple, b: tuple, tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(Image.new("RGB", (1600, 800), (0, 128, 0)), "JPEG", exif=exif.tobytes())
    rendered = render(data, JPEG, max_pixels=10**8)
    assert size_of(rendered.medium) == (470, 940)


def test_cmyk_jpeg_renders_in_the_right_colours() -> None:
    red = Image.new("RGB", (1200, 900), (220, 30, 30)).convert("CMYK")
    rendered = render(encode(red, "JPEG", quality=95), JPEG, max_pixels=10**8)
    assert Image.open(io.BytesIO(rendered.medium)).mode == "RGB"
    assert close(centre_pixel(rendered.medium)[:3], (220, 30, 30), 25)


def test_grayscale_jpeg_stays_grayscale() -> None:
    data = encode(Image.new("L", (1200, 900), 77), "JPEG")
    rendered = render(data, JPEG, max_pixels=10**8)
    medium = Image.open(io.BytesIO(rendered.medium))
    assert medium.mode == "L" and close((medium.getpixel((10, 10)),), (77,), 3)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    deep = Image.new("I;16", (1200, 900), 32768)  # mid grey in 16 bits
    rendered = render(encode(deep, "PNG"), PNG, max_pixels=10**8)
    medium = Image.open(io.BytesIO(rendered.medium))
    assert medium.format == "PNG"
    assert close(centre_pixel(rendered.medium)[:3], (128, 128, 128), 3)


def test_alpha_jpeg_source_is_flattened_on_white_for_jpeg() -> None:
    # A PNG with alpha stays PNG; this checks the JPEG path's flattening of LA/RGBA modes.
    from functions.image.renditions import _normalise_mode

    flattened = _normalise_mode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), JPEG)
    assert flattened.mode == "RGB" and flattened.getpixel((5, 5)) == (255, 255, 255)


def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every image Pillow decodes from here on (after draft() took effect)."""

    seen: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile) -> object:
        seen.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    return seen


@pytest.mark.parametrize("image_format", ["JPEG", "MPO"])
def test_every_jpeg_family_file_is_draft_decoded(monkeypatch: pytest.MonkeyPatch,
                                                 image_format: str) -> None:
    # 12 MP, as phone-style camera JPEGs with an embedded preview (Pillow opens them as MPO).
    big = Image.new("RGB", (4000, 3000), (90, 120, 60))
    out = io.BytesIO()
    extra = {"save_all": True, "append_images": [Image.new("RGB", (640, 480))]} \
        if image_format == "MPO" else {}
    big.save(out, format=image_format, quality=80, **extra)
    assert Image.open(io.BytesIO(out.getvalue())).format == image_format
    seen = decoded_sizes(monkeypatch)

    rendered = render(out.getvalue(), JPEG, 100_000_000)

    assert (rendered.width, rendered.height) == (4000, 3000)
    assert seen and max(seen) <= (2000, 1500)  # decoded at 1/2 scale or less, not full size


def psnr(ours: Image.Image, reference: Image.Image) -> float:
    """Peak signal-to-noise ratio of `ours` against `reference`, in dB (99: identical)."""
    assert (ours.mode, ours.size) == (reference.mode, reference.size)
    squares = ImageStat.Stat(ImageChops.difference(ours, reference)).sum2
    mse = sum(squares) / (len(squares) * ours.size[0] * ours.size[1])
    return 10 * math.log10(255**2 / mse) if mse else 99.0


CAMERA_TRAP_PHOTOS = sorted(p for p in CAMERA_TRAPS.glob("*/*") if p.suffix.lower()
                            in (".jpg", ".jpeg") and not p.stem.startswith("error"))


@pytest.mark.parametrize("path", CAMERA_TRAP_PHOTOS, ids=lambda p: p.name)
def test_photo_renditions_are_pillows_lanczos_within_a_level_or_two(path: Path) -> None:
    # The reference: Pillow's own LANCZOS (the same Lanczos-3 filter, scalar), from the same
    # drafted decode, by thumbnail(). 50 dB is an average error of under one level in 255.
    decoded = Image.open(path)
    decoded.draft(decoded.mode, _fitted(decoded.size, MEDIUM_SIZE))
    decoded.load()
    reference_medium = decoded.copy()
    reference_medium.thumbnail(MEDIUM_SIZE, Image.Resampling.LANCZOS, reducing_gap=3.0)
    reference_small = reference_medium.copy()
    reference_small.thumbnail(SMALL_SIZE, Image.Resampling.LANCZOS, reducing_gap=3.0)

    medium = _fit(decoded, MEDIUM_SIZE, JPEG)
    small = _fit(medium.copy(), SMALL_SIZE, JPEG)

    assert psnr(medium, reference_medium) >= 50
    assert psnr(small, reference_small) >= 50


@pytest.mark.parametrize("box", [(940, 940), (120, 120), (300, 200), (1, 1)])
def test_renditions_are_sized_as_pillows_thumbnail_sizes_them(box: tuple[int, int]) -> None:
    sizes = [(w, h) for w in (1, 2, 3, 119, 120, 121, 641, 940, 941, 1024, 2048, 4032, 10_000)
             for h in (1, 2, 3, 67, 119, 120, 121, 480, 705, 940, 1536, 3024, 7)]
    for size in sizes:
        image = Image.new("L", size)
        image.thumbnail(box)
        assert thumbnail_size(size, box) == image.size, size


def most_decodes_at_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pillow's decodes from now on, noted: [most at once]. Each one lasts at least 50 ms, so
    decodes that may overlap do."""
    load, lock, state = ImageFile.ImageFile.load, threading.Lock(), {"now": 0}
    most = [0]

    def counting_load(self: ImageFile.ImageFile) -> object:
        with lock:
            state["now"] += 1
            most[0] = max(most[0], state["now"])
        try:
            time.sleep(0.05)
            return load(self)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return most


@pytest.mark.parametrize("decodes_that_fit", [1, 4])
def test_threads_decode_at_once_only_what_fits_in_their_budget(
        monkeypatch: pytest.MonkeyPatch, decodes_that_fit: int) -> None:
    # As a group's threads with big PNGs (decoded whole: no draft for PNG).
    pngs = [encode(Image.new("RGB", (1000, 800), (i * 40, 80, 120)), "PNG") for i in range(4)]
    one_decode = 1000 * 800 * DECODE_BYTES_PER_PIXEL
    budget = ByteBudget(decodes_that_fit * one_decode)
    most = most_decodes_at_once(monkeypatch)

    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = list(pool.map(lambda data: render(data, PNG, 10**8, budget), pngs))

    assert [size_of(r.medium) for r in rendered] == [(940, 752)] * 4
    if decodes_that_fit == 1:
        assert most[0] == 1
    else:  # the other case's bound is the budget's doing: unbounded, the threads overlap
        assert most[0] > 1
    assert budget.peak_bytes <= budget.limit_bytes and budget.held_bytes == 0


def test_an_image_bigger_than_its_whole_budget_is_still_rendered() -> None:
    budget = ByteBudget(1000)
    rendered = render(encode(Image.new("RGB", (1200, 900), (1, 2, 3)), "PNG"), PNG, 10**8, budget)
    assert size_of(rendered.medium) == (940, 705)
    assert budget.peak_bytes == 1000


def test_a_drafted_jpeg_holds_its_reduced_size_not_its_full_size() -> None:
    budget = ByteBudget(10**12)
    path = CAMERA_TRAPS / "BUOW" / "IMG_0708.JPG"
    full = Image.open(path).size
    render(path.read_bytes(), JPEG, 10**8, budget)
    drafted = (full[0] // 2) * (full[1] // 2) * DECODE_BYTES_PER_PIXEL  # 1/2 still covers 940
    assert budget.peak_bytes == drafted


def test_a_decoded_image_gives_its_memory_back_to_the_system() -> None:
    # Four threads render eight 61 MB decodes one at a time (a budget of one), in a fresh
    # interpreter. With Pillow's 16 MB blocks, each thread's malloc arena kept what it freed
    # and the process grew by about four decodes (264 MB); mapped blocks give it back.
    script = textwrap.dedent("""
        import io, resource
        from concurrent.futures import ThreadPoolExecutor
        from PIL import Image
        from functions.image.image_checks import PNG
        from functions.image.renditions import render
        from functions.platform.budget import ByteBudget
        pngs = []
        for i in range(4):
            out = io.BytesIO()
            Image.new("RGB", (4000, 4000), (40 * i, 90, 160)).save(out, "PNG", compress_level=1)
            pngs.append(out.getvalue())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        budget = ByteBudget(1)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda data: render(data, PNG, 10**8, budget), pngs * 2))
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    one_decode_mb = 4000 * 4000 * 4 // 2**20
    assert int(done.stdout) < 2 * one_decode_mb


def test_photos_are_resized_in_simd_not_by_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("resized by Pillow")

    monkeypatch.setattr(Image.Image, "resize", refused)
    monkeypatch.setattr(Image.Image, "thumbnail", refused)
    for path in (CAMERA_TRAPS / "BUOW" / "IMG_0708.JPG", CAMERA_TRAPS / "Southwest" /
                 "2021-05-28_SYFR0041_deer.JPG"):
        rendered = render(path.read_bytes(), JPEG, 10**8)
        assert max(size_of(rendered.medium)) == 940 and max(size_of(rendered.small)) == 120


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memfd is Linux's (Lambda's)")
def test_jpegs_are_encoded_into_a_descriptor_to_pillows_bytes_leaving_none_open() -> None:
    # Pillow encodes into a file with a descriptor outside the GIL (into a BytesIO under it),
    # so a group's threads encode on both vCPUs; the bytes are the same either way.
    import os

    from functions.image.renditions import _encode, _file_in_memory

    with _file_in_memory() as file:
        assert file.fileno() >= 0  # what Pillow's save looks for to encode into a descriptor
    photo = Image.open(CAMERA_TRAPS / "BUOW" / "IMG_0708.JPG")
    photo.draft("RGB", (940, 940))
    medium = photo.convert("RGB").resize((940, 705))
    expected = io.BytesIO()
    medium.save(expected, format="JPEG", quality=85)
    descriptors = len(os.listdir("/proc/self/fd"))

    encoded = [_encode(medium, JPEG) for _ in range(20)]

    assert encoded == [expected.getvalue()] * 20
    assert len(os.listdir("/proc/self/fd")) == descriptors
