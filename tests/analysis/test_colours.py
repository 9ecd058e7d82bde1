"""Colour histograms against the SPEC formula, on synthetic and real photos."""

import colorsys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devtools.synthetic import exif_with_thumbnail
from photo_assets.analysis.colours import (
    COLOUR_NAMES,
    MIN_SHARE,
    PALETTE,
    colour_histogram,
    histogram_for_path,
    rgb_to_hsv,
    similarity,
)
from photo_assets.analysis.images import PhotoError, open_oriented

PALETTE_HSV = {name: colorsys.rgb_to_hsv(*(c / 255 for c in rgb)) for name, rgb in PALETTE.items()}


def reference_vote(red: int, green: int, blue: int) -> str:
    """A straightforward per-pixel transcription of the SPEC (colorsys, circular hue), to check the vectorised one."""
    h, s, v = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    best, best_score = None, -1.0
    for name, (ph, ps, pv) in PALETTE_HSV.items():
        dh = min(abs(h - ph), 1 - abs(h - ph))
        score = (1 - dh) * (1 - 0.5 * abs(s - ps)) * (1 - 0.25 * abs(v - pv))
        if score > best_score:
            best, best_score = name, score
    return best


def reference_histogram(image: Image.Image) -> list[tuple[str, float]]:
    counts = dict.fromkeys(PALETTE, 0)
    small = image.convert("RGB").resize((32, 32), Image.Resampling.BICUBIC)
    for pixel in np.asarray(small).reshape(-1, 3).tolist():
        counts[reference_vote(*pixel)] += 1
    return sorted(((n, c / 1024) for n, c in counts.items() if c / 1024 >= MIN_SHARE), key=lambda x: -x[1])


# Every 5th level of each channel (52^3 = 140,608 colours) plus the top end: greys, pure and near-tie colours.
LATTICE = np.stack(np.meshgrid(*[np.r_[0:256:5, 254, 255]] * 3, indexing="ij"), axis=-1).reshape(-1, 3)


def solid(rgb) -> Image.Image:
    return Image.new("RGB", (64, 48), rgb)


@pytest.mark.parametrize(
    "rgb, expected",
    [
        ((0, 255, 0), "Green"),
        ((0, 0, 255), "Blue"),
        ((255, 255, 255), "White"),
        ((0, 0, 0), "Black"),
        ((124, 124, 124), "Gray"),
        ((150, 10, 30), "Red"),
        ((245, 133, 0), "Orange"),
        ((233, 8, 200), "Magenta"),
    ],
)
def test_solid_colours_vote_for_their_palette_colour(rgb, expected):
    assert colour_histogram(solid(rgb)) == [(expected, 1.0)]


def test_hsv_is_bit_identical_to_colorsys():
    """Exact equality, not closeness: a last-bit difference could flip a vote between two near-equal colours.
    (All 2^24 colours were checked once, offline; the lattice keeps the test fast.)"""
    expected = np.array([colorsys.rgb_to_hsv(*(c / 255)) for c in LATTICE])
    np.testing.assert_array_equal(rgb_to_hsv(LATTICE / 255.0), expected)


def test_votes_equal_the_per_pixel_formula():
    sample = LATTICE[:: 7]  # 20,000 colours through the slow loop
    ours = similarity(rgb_to_hsv(sample / 255.0)).argmax(axis=1)
    assert [COLOUR_NAMES[index] for index in ours] == [reference_vote(*pixel) for pixel in sample.tolist()]


def test_hue_distance_is_circular():
    """Hue 0.98 and 0.02 are neighbours: a crimson at hue ~0.98 must score high against a red at hue ~0.02."""
    reds = rgb_to_hsv(np.array([[1.0, 0.0, 0.12]]))  # hue ~0.98
    orange_red = rgb_to_hsv(np.array([[1.0, 0.12, 0.0]]))  # hue ~0.02
    score = similarity(reds, orange_red)[0, 0]
    assert score > 0.95  # the reference's linear |dh| gave ~0.04
    # Pure red against the palette's Red (hue 0.977): close, not opposite.
    assert similarity(rgb_to_hsv(np.array([[1.0, 0.0, 0.0]])))[0, COLOUR_NAMES.index("Red")] > 0.8


def test_shares_threshold_and_order():
    image = Image.new("RGB", (32, 32), (0, 0, 255))
    image.paste((255, 255, 255), (0, 0, 32, 8))  # 25 % white
    image.paste((0, 0, 0), (0, 8, 4, 9))  # 4 pixels black: 0.4 % < min share
    histogram = colour_histogram(image)
    assert [name for name, _ in histogram] == ["Blue", "White"]
    assert histogram[0][1] > histogram[1][1]
    assert all(share >= MIN_SHARE for _, share in histogram)
    assert sum(share for _, share in histogram) <= 1.0


def test_real_photos_equal_the_per_pixel_reference(shared_dir: Path):
    photos = sorted((shared_dir / "corpus" / "gps").glob("*.jpg"))[:8]
    assert photos
    for path in photos:
        image = open_oriented(path)
        ours, reference = colour_histogram(image), reference_histogram(image)
        assert [name for name, _ in ours] == [name for name, _ in reference]
        assert [share for _, share in ours] == pytest.approx([share for _, share in reference])


def test_files_agree_with_a_full_decode(shared_dir: Path):
    """histogram_for_path (thumbnail or reduced decode) against the reference on every pixel: the same top colour,
    except where the reference itself is a near tie (its top two within 3 %), and close shares."""
    share_errors = []
    for path in sorted((shared_dir / "corpus" / "gps").glob("*.jpg")):
        fast, reference = histogram_for_path(path), reference_histogram(open_oriented(path))
        reference_shares = dict(reference)
        if fast[0][0] != reference[0][0]:
            assert reference_shares[reference[0][0]] - reference_shares.get(fast[0][0], 0.0) < 0.03, path.name
        share_errors.append(abs(dict(fast).get(reference[0][0], 0.0) - reference_shares[reference[0][0]]))
    assert np.mean(share_errors) < 0.02 and max(share_errors) < 0.1


def _split(path: Path, red_share: float, thumbnail: Image.Image | None = None) -> Path:
    """A 640 x 480 photo, red on the left `red_share` of it and blue on the rest, with an optional EXIF thumbnail."""
    image = Image.new("RGB", (640, 480), (0, 0, 255))
    image.paste((150, 10, 30), (0, 0, round(640 * red_share), 480))
    exif = exif_with_thumbnail(Image.Exif(), thumbnail) if thumbnail is not None else Image.Exif()
    image.save(path, quality=95, exif=exif)
    return path


def test_a_faithful_thumbnail_is_what_gets_analysed(tmp_path: Path):
    green = Image.new("RGB", (160, 120), (7, 215, 7))  # unlike the photo, to see where the answer comes from
    assert histogram_for_path(_split(tmp_path / "photo.jpg", 0.7, green)) == [("Green", 1.0)]


@pytest.mark.parametrize("thumbnail_size", [(80, 60), (160, 90)])  # too small; another aspect ratio
def test_without_a_faithful_thumbnail_the_photo_is_decoded(tmp_path: Path, thumbnail_size):
    green = Image.new("RGB", thumbnail_size, (7, 215, 7))
    histogram = histogram_for_path(_split(tmp_path / "photo.jpg", 0.7, green))
    assert [name for name, _ in histogram[:2]] == ["Red", "Blue"]  # and a little Purple where they meet
    assert histogram[0][1] == pytest.approx(0.7, abs=0.02)


def test_an_unreadable_file_is_a_photo_error(tmp_path: Path):
    with pytest.raises(PhotoError) as raised:
        histogram_for_path(tmp_path / "gone.jpg")
    assert raised.value.kind == "missing"
