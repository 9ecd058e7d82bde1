"""Colour histogram: which of 17 named colours a photo is made of, and in what shares (docs/analysis.md, Colours).

Each of the 32 x 32 = 1,024 resampled pixels votes for its most similar palette colour, compared in HSV with
`(1 - dh) * (1 - 0.5 |ds|) * (1 - 0.25 |dv|)`. Unlike the reference, `dh` is the circular hue distance
`min(|dh|, 1 - |dh|)`: hue 0.98 and 0.02 are neighbours, so pure red (255, 0, 0) is "Red", not something else.

From a file, the 32 x 32 sample comes from the camera's EXIF thumbnail when it is faithful (reference issue #336:
"analyse from thumbnails not originals"), else from a JPEG decoded at reduced scale: ~100x and ~4x cheaper than
decoding every pixel of a 12 MP photo. Both give the full decode's top colour except in near ties (top two within
~1 %, where a pixel or two decides) and for cameras that render their thumbnail's colours differently; the bench
measures how often (bench/colour_location.py). Settling near ties by decoding cost 4-5x the speed for ~1 % of photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from photo_assets.analysis.images import open_exif_thumbnail, open_oriented

PALETTE: dict[str, tuple[int, int, int]] = {
    "Red": (120, 4, 20),
    "Orange": (245, 133, 0),
    "Amber": (234, 166, 30),
    "Yellow": (240, 240, 39),
    "Lime": (168, 228, 26),
    "Green": (7, 215, 7),
    "Teal": (16, 202, 155),
    "Turquoise": (25, 225, 225),
    "Aqua": (10, 188, 245),
    "Azure": (30, 83, 249),
    "Blue": (0, 0, 255),
    "Purple": (127, 0, 255),
    "Orchid": (190, 0, 255),
    "Magenta": (233, 8, 200),
    "White": (255, 255, 255),
    "Gray": (124, 124, 124),
    "Black": (0, 0, 0),
}
COLOUR_NAMES = list(PALETTE)
# The reference's sampling grid: 1,024 votes are enough to rank a photo's colours and cost nothing.
SAMPLE_SIZE = (32, 32)
# Shares below half a percent are noise (five pixels of 1,024), not a colour of the photo.
MIN_SHARE = 0.005
# Photos whose camera embedded a faithful EXIF thumbnail with at least this short side (cameras write 160 x 120) are
# analysed from it: a 32 x 32 sample needs no more, and decoding a 12 MP JPEG costs ~30-100x more.
THUMBNAIL_MIN_SIDE = 96
# Without such a thumbnail, JPEGs are decoded at 1/2..1/8 scale while at least this size: the 32 x 32 bicubic result
# stays within 1-2 grey levels of a full decode (bench/colour_location.py measures it) at a fraction of the cost.
DECODE_MIN_SIDE = 256
SATURATION_WEIGHT, VALUE_WEIGHT = 0.5, 0.25  # hue weighs 1: (1 - dh)
ALGORITHM_VERSION = "colour-v2-exif-thumbnail"


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """colorsys.rgb_to_hsv for an (n, 3) array of floats in 0..1: the same operations, so bit-identical results."""
    return np.column_stack(_hsv_channels(*rgb.T))


def _hsv_channels(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue, saturation and value arrays, with colorsys's tie-breaking (red, then green) and operation order."""
    top = np.maximum(np.maximum(red, green), blue)
    spread = top - np.minimum(np.minimum(red, green), blue)
    grey = spread == 0
    safe_spread = np.where(grey, 1.0, spread)
    saturation = np.where(grey, 0.0, spread / np.where(grey, 1.0, top))
    red_c, green_c, blue_c = ((top - channel) / safe_spread for channel in (red, green, blue))
    hue = np.where(
        red == top, blue_c - green_c, np.where(green == top, 2.0 + red_c - blue_c, 4.0 + green_c - red_c)
    )
    hue = np.where(grey, 0.0, (hue / 6.0) % 1.0)
    return hue, saturation, top


PALETTE_HSV = rgb_to_hsv(np.array(list(PALETTE.values()), dtype=np.float64) / 255.0)


def similarity(pixels_hsv: np.ndarray, palette_hsv: np.ndarray = PALETTE_HSV) -> np.ndarray:
    """(n, k) similarity of n HSV pixels to k HSV palette colours."""
    return _palette_scores(*pixels_hsv.T, palette_hsv).T


def _palette_scores(
    hue: np.ndarray, saturation: np.ndarray, value: np.ndarray, palette_hsv: np.ndarray = PALETTE_HSV
) -> np.ndarray:
    """(k, n) scores: one row of n pixels per palette colour. numpy runs these long rows many times faster than the
    17-wide rows of an (n, k) or (n, k, 3) layout; the same float64 operations in the same order as the per-pixel
    formula, so the same votes (checked against the per-pixel loop on millions of colours)."""
    palette_hue, palette_saturation, palette_value = (palette_hsv[:, channel, None] for channel in range(3))
    scores = np.abs(hue - palette_hue)
    np.minimum(scores, 1.0 - scores, out=scores)
    np.subtract(1.0, scores, out=scores)
    term = np.abs(saturation - palette_saturation)
    term *= SATURATION_WEIGHT
    scores *= np.subtract(1.0, term, out=term)
    np.abs(np.subtract(value, palette_value, out=term), out=term)
    term *= VALUE_WEIGHT
    scores *= np.subtract(1.0, term, out=term)
    return scores


def colour_histogram(image: Image.Image) -> list[tuple[str, float]]:
    """Shares of palette colours >= MIN_SHARE, largest first, for an oriented image."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    sample = np.asarray(rgb.resize(SAMPLE_SIZE, Image.Resampling.BICUBIC)).reshape(-1, 3)
    channels = np.ascontiguousarray(sample.T, dtype=np.float64) / 255.0
    votes = _palette_scores(*_hsv_channels(*channels)).argmax(axis=0)  # ties go to the first colour, as in the loop
    shares = np.bincount(votes, minlength=len(COLOUR_NAMES)) / len(votes)
    order = np.argsort(-shares, kind="stable")
    return [(COLOUR_NAMES[index], float(shares[index])) for index in order if shares[index] >= MIN_SHARE]


def small_copy(path: Path) -> Image.Image:
    """The small oriented copy of a photo file the colours are taken from (and its near-duplicate hashes): its camera
    thumbnail when faithful, else a reduced decode. Raises images.PhotoError when the photo cannot be read."""
    thumbnail = open_exif_thumbnail(path, THUMBNAIL_MIN_SIDE)
    return thumbnail if thumbnail is not None else open_oriented(path, max_side=DECODE_MIN_SIDE)


def histogram_for_path(path: Path) -> list[tuple[str, float]]:
    """The colour histogram of a photo file, from its small copy. Raises images.PhotoError when it cannot be read."""
    return colour_histogram(small_copy(path))
