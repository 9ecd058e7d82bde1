"""Decoding and metadata: GPS per SPEC, orientation, every format, and bad files turned into PhotoErrors."""

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from devtools.synthetic import exif_with_thumbnail
from photo_assets.analysis.colours import histogram_for_path
from photo_assets.analysis.images import (
    EXIF_ORIENTATION,
    GPS_IFD,
    MAX_PIXELS,
    PhotoError,
    decode_gps,
    open_exif_thumbnail,
    open_oriented,
    open_reduced,
    read_metadata,
)

ARCDE_TRIOMPHE = {1: "N", 2: (48.0, 52.0, 25.7), 3: "E", 4: (2.0, 17.0, 40.2)}


def test_gps_seconds_are_divided_by_3600():
    latitude, longitude, _ = decode_gps(ARCDE_TRIOMPHE)
    assert latitude == pytest.approx(48 + 52 / 60 + 25.7 / 3600)
    assert longitude == pytest.approx(2 + 17 / 60 + 40.2 / 3600)


def test_south_and_west_are_negative_and_altitude_below_sea_level():
    gps = {1: "S", 2: (33.0, 51.0, 0.0), 3: "W", 4: (70.0, 30.0, 0.0), 5: b"\x01", 6: 12.5}
    latitude, longitude, altitude = decode_gps(gps)
    assert (latitude, longitude) == pytest.approx((-33.85, -70.5))
    assert altitude == -12.5


@pytest.mark.parametrize("unknown", [IFDRational(0, 0), (0, 0), float("nan")])
def test_unknown_seconds_count_as_zero_beside_valid_degrees_and_minutes(unknown):
    """Nikon D5000: seconds written as 0/0, which Pillow reads as NaN; degrees and minutes still place the photo."""
    gps = {1: "N", 2: (IFDRational(48), IFDRational(5332358, 100000), unknown), 3: "E", 4: (21.0, 2.59507, unknown)}
    latitude, longitude, _ = decode_gps(gps)
    assert latitude == pytest.approx(48 + 53.32358 / 60)
    assert longitude == pytest.approx(21 + 2.59507 / 60)


def test_gps_of_a_camera_writing_nan_seconds(shared_dir: Path):
    metadata = read_metadata(shared_dir / "corpus" / "gps" / "mei__jpg__Nikon_D5000.jpg")
    assert (metadata.latitude, metadata.longitude) == pytest.approx((48.888726, 21.043251), abs=1e-5)


@pytest.mark.parametrize(
    "gps",
    [
        {1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)},  # broken phones
        {1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},  # out of range
        {1: "N", 2: (45.0, 0.0, 0.0), 3: "E", 4: (190.0, 0.0, 0.0)},
        {1: "N", 2: (float("nan"), 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},
        {1: "N", 2: ((45, 0), (0, 1), (0, 1)), 3: "E", 4: (10.0, 0.0, 0.0)},  # zero denominator in the degrees
        {1: "N", 2: (IFDRational(45, 0), 30.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},
        {1: "N", 3: "E", 4: (10.0, 0.0, 0.0)},  # no latitude
        {},
    ],
)
def test_unusable_gps_means_no_location(gps):
    assert decode_gps(gps)[:2] == (None, None)


def _photo_with_gps(path: Path, orientation: int = 1) -> Path:
    image = Image.new("RGB", (120, 80), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Make\x00"
    exif.get_ifd(GPS_IFD).update(ARCDE_TRIOMPHE)
    image.save(path, exif=exif)
    return path


def test_metadata_of_a_real_camera_photo(shared_dir: Path):
    metadata = read_metadata(shared_dir / "corpus" / "gps" / "ianare__jpg__gps__DSCN0010.jpg")
    assert metadata.camera_make == "NIKON"
    assert metadata.latitude == pytest.approx(43.467448, abs=1e-5)
    assert metadata.longitude == pytest.approx(11.885127, abs=1e-5)
    assert (metadata.width, metadata.height) == (640, 480)


@pytest.mark.parametrize("orientation, size", [(1, (120, 80)), (6, (80, 120)), (8, (80, 120)), (3, (120, 80))])
def test_orientation_is_applied_to_pixels_and_dimensions(tmp_path: Path, orientation, size):
    path = _photo_with_gps(tmp_path / "photo.jpg", orientation)
    metadata = read_metadata(path)
    assert metadata.orientation == orientation
    assert (metadata.width, metadata.height) == size
    assert open_oriented(path).size == size
    assert metadata.camera_make == "Make"


@pytest.mark.parametrize("suffix", ["jpg", "png", "tiff", "webp", "gif", "bmp", "heic"])
def test_every_supported_format_decodes_to_rgb(tmp_path: Path, suffix):
    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 90, 4), dtype=np.uint8), "RGBA")
    path = tmp_path / f"photo.{suffix}"
    (rgba.convert("RGB") if suffix in ("jpg", "bmp", "heic") else rgba).save(path)
    image = open_oriented(path, max_side=50)
    assert image.mode == "RGB" and max(image.size) == 50


def test_sixteen_bit_png_decodes(tmp_path: Path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64)).save(path)
    assert open_oriented(path).mode == "RGB"


def test_decompression_bomb_is_refused_without_decoding(tmp_path: Path):
    side = math.isqrt(MAX_PIXELS) + 100
    path = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(path)  # tiny on disk, huge when decoded
    with pytest.raises(PhotoError) as raised:
        open_oriented(path)
    assert raised.value.kind == "decompression_bomb"


@pytest.mark.parametrize(
    "content, kind",
    [(b"", "unsupported_format"), (b"not an image at all", "unsupported_format")],
)
def test_garbage_is_a_photo_error(tmp_path: Path, content, kind):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(PhotoError) as raised:
        read_metadata(path)
    assert raised.value.kind == kind


def test_truncated_jpeg_is_corrupt(tmp_path: Path):
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)).save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:5000])
    read_metadata(cut)  # the header is intact
    with pytest.raises(PhotoError) as raised:
        open_oriented(cut)
    assert raised.value.kind == "corrupt"


def test_vanished_file_is_missing(tmp_path: Path):
    with pytest.raises(PhotoError) as raised:
        open_oriented(tmp_path / "gone.jpg")
    assert raised.value.kind == "missing"


# ------------------------------------------------------------------------------------------- EXIF thumbnails


def _quadrants(size: tuple[int, int]) -> Image.Image:
    """Four differently coloured quadrants: any wrong flip or rotation shows."""
    image = Image.new("RGB", size, (220, 30, 30))
    width, height = size
    image.paste((30, 200, 40), (width // 2, 0, width, height // 2))
    image.paste((30, 40, 210), (0, height // 2, width // 2, height))
    image.paste((240, 230, 40), (width // 2, height // 2, width, height))
    return image


def _photo_with_thumbnail(path: Path, stored: Image.Image, thumbnail: Image.Image, orientation: int = 1) -> Path:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update(ARCDE_TRIOMPHE)
    stored.save(path, quality=90, exif=exif_with_thumbnail(exif, thumbnail))
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_thumbnail_is_oriented_like_the_photo(tmp_path: Path, orientation):
    stored = _quadrants((640, 480))
    path = _photo_with_thumbnail(tmp_path / "photo.jpg", stored, stored.resize((160, 120)), orientation)
    thumbnail = open_exif_thumbnail(path, min_side=96)
    upright = open_oriented(path)
    assert thumbnail is not None and thumbnail.mode == "RGB"
    assert thumbnail.size == (upright.width // 4, upright.height // 4)
    difference = np.abs(np.asarray(thumbnail, float) - np.asarray(upright.resize(thumbnail.size), float))
    assert difference.mean() < 4


def test_writing_a_thumbnail_keeps_the_rest_of_the_exif(tmp_path: Path):
    stored = _quadrants((640, 480))
    metadata = read_metadata(_photo_with_thumbnail(tmp_path / "photo.jpg", stored, stored.resize((160, 120)), 6))
    assert (metadata.latitude, metadata.orientation, metadata.width) == (pytest.approx(48.8738, abs=1e-3), 6, 480)


@pytest.mark.parametrize(
    "photo_size, thumbnail_size",
    [
        ((600, 400), (160, 120)),  # a 3:2 photo with a letterboxed 4:3 thumbnail
        ((640, 480), (80, 60)),  # too small for a 32 x 32 sample
        ((120, 90), (160, 120)),  # larger than the photo: stale, and saves nothing
    ],
)
def test_unfaithful_thumbnails_are_not_used(tmp_path: Path, photo_size, thumbnail_size):
    stored = _quadrants(photo_size)
    path = _photo_with_thumbnail(tmp_path / "photo.jpg", stored, _quadrants(thumbnail_size))
    assert open_exif_thumbnail(path, min_side=96) is None


def test_broken_thumbnail_means_none_not_an_error(tmp_path: Path):
    stored = _quadrants((640, 480))
    exif = exif_with_thumbnail(Image.Exif(), stored.resize((160, 120)))
    truncated = exif[: len(exif) - len(exif) // 4] + bytes(len(exif) // 4)  # the thumbnail's last quarter zeroed
    path = tmp_path / "photo.jpg"
    stored.save(path, exif=truncated)
    assert open_exif_thumbnail(path, min_side=96) is None
    assert open_oriented(path).size == (640, 480)


def test_files_without_a_thumbnail(tmp_path: Path):
    png = tmp_path / "photo.png"
    _quadrants((640, 480)).save(png)
    plain = tmp_path / "plain.jpg"
    _quadrants((640, 480)).save(plain)
    assert open_exif_thumbnail(png, min_side=96) is None
    assert open_exif_thumbnail(plain, min_side=96) is None
    assert open_exif_thumbnail(tmp_path / "gone.jpg", min_side=96) is None  # open_oriented reports it


def test_camera_thumbnails_and_fuzzed_files(shared_dir: Path):
    """Real cameras' thumbnails are found (160 x 120 and the like); no fuzzed or broken file makes it raise."""
    files = [path for path in sorted((shared_dir / "corpus").rglob("*")) if path.is_file()]
    found = {path.name: open_exif_thumbnail(path, min_side=96) for path in files}
    assert found["ianare__jpg__gps__DSCN0010.jpg"].size == (160, 120)
    assert found["mei__jpg__Apple_iPhone_5.jpg"].size == (160, 120)  # orientation 3: upside down, same size
    assert found["mei__jpg__Samsung_GT-I9000_(Galaxy_S).jpg"].size == (120, 160)  # orientation 6: turned upright
    assert found["mei__jpg__Leica_T_(Typ_701).jpg"] is None  # 3:2 photo, letterboxed 4:3 thumbnail
    assert sum(thumbnail is not None for thumbnail in found.values()) >= 60


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_the_reduced_decode_is_oriented_and_knows_the_full_size(tmp_path: Path, orientation: int, suffix: str):
    """open_reduced (face detection's decode, issue 12): a JPEG decoded at the smallest DCT scale keeping its long
    side >= the request, oriented like open_oriented, with the full-size photo's oriented size; other formats whole."""
    stored = Image.fromarray(np.random.default_rng(1).integers(0, 255, (1500, 2001, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = tmp_path / f"photo.{suffix}"
    stored.save(path, exif=exif)
    full = open_oriented(path)
    reduced, size = open_reduced(path, 500)
    assert size == full.size
    if suffix == "jpg":  # 2001 // 500 = 4: a quarter of each side, rounded up
        assert sorted(reduced.size) == [375, 501]
        assert (reduced.width > reduced.height) == (full.width > full.height)
    else:
        assert reduced.size == full.size
    assert reduced.mode == "RGB"
    small = open_reduced(path, 4000)[0]  # asking for more than the photo has: the photo itself
    assert small.size == full.size


def test_a_heic_thumbnail_is_found_and_a_heic_without_one_is_decoded(tmp_path: Path):
    """Phones embed a small copy in each HEIC; it stands in for a 0.5 s decode of the 12 MP image where a thumbnail
    is enough (colours). A HEIC without one gives None, and its colours come from the image itself."""
    image = Image.new("RGB", (1600, 1200), (0, 0, 255))
    image.paste((150, 10, 30), (0, 0, 1120, 1200))
    with_thumbnail, without = tmp_path / "with.heic", tmp_path / "without.heic"
    image.save(with_thumbnail, format="HEIF", quality=90, thumbnails=[320])
    image.save(without, format="HEIF", quality=90)
    thumbnail = open_exif_thumbnail(with_thumbnail, min_side=96)
    assert thumbnail is not None and thumbnail.size == (320, 240) and thumbnail.mode == "RGB"
    assert open_exif_thumbnail(without, min_side=96) is None
    assert open_exif_thumbnail(with_thumbnail, min_side=256) is None  # smaller than asked for
    for path in (with_thumbnail, without):
        histogram = histogram_for_path(path)
        assert [name for name, _ in histogram[:2]] == ["Red", "Blue"]
        assert histogram[0][1] == pytest.approx(0.7, abs=0.03)
