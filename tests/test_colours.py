"""Colour histograms against the SPEC formula, on synthetic and real photos."""

import colorsys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photo_assets.analysis.colours import (
    COLOUR_NAMES,
    MIN_SHARE,
    PALETTE,
    colour_histogram,
    histogram_for_path,
    rgb_to_hsv,
    similarity,
)
from photo_assets.analysis.images import open_oriented


def reference_histogram(image: Image.Image) -> list[tuple[str, float]]:
    """A straightforward per-pixel transcription of the SPEC (colorsys, circular hue), to check the vectorised one."""
    palette_hsv = {name: colorsys.rgb_to_hsv(*(c / 255 for c in rgb)) for name, rgb in PALETTE.items()}
    counts = dict.fromkeys(PALETTE, 0)
    small = image.convert("RGB").resize((32, 32), Image.Resampling.BICUBIC)
    for red, green, blue in np.asarray(small).reshape(-1, 3).tolist():
        h, s, v = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
        best, best_score = None, -1.0
        for name, (ph, ps, pv) in palette_hsv.items():
            dh = min(abs(h - ph), 1 - abs(h - ph))
            score = (1 - dh) * (1 - 0.5 * abs(s - ps)) * (1 - 0.25 * abs(v - pv))
            if score > best_score:
                best, best_score = name, score
        counts[best] += 1
    shares = sorted(((n, c / 1024) for n, c in counts.items() if c / 1024 >= MIN_SHARE), key=lambda x: -x[1])
    return shares


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


def test_hsv_matches_colorsys_on_every_edge_case():
    rng = np.random.default_rng(1)
    samples = np.concatenate([rng.integers(0, 256, (2000, 3)), [[255, 0, 0], [0, 0, 0], [255, 255, 255], [7, 7, 9]]])
    ours = rgb_to_hsv(samples / 255.0)
    expected = np.array([colorsys.rgb_to_hsv(*(c / 255.0)) for c in samples])
    np.testing.assert_allclose(ours, expected, atol=1e-12)


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


def test_reduced_jpeg_decode_keeps_the_top_colours(shared_dir: Path):
    """Draft-mode decoding (what histogram_for_path does) agrees with a full decode on the dominant colour."""
    for path in sorted((shared_dir / "corpus" / "gps").glob("*.jpg"))[:12]:
        full = colour_histogram(open_oriented(path))
        fast = histogram_for_path(path)
        assert fast[0][0] == full[0][0]
        assert abs(fast[0][1] - full[0][1]) < 0.05
