"""Colour histogram: which of 17 named colours a photo is made of, and in what shares (SPEC: Colour histogram).

Each of the 32 x 32 = 1,024 resampled pixels votes for its most similar palette colour, compared in HSV with
`(1 - dh) * (1 - 0.5 |ds|) * (1 - 0.25 |dv|)`. Unlike the reference, `dh` is the circular hue distance
`min(|dh|, 1 - |dh|)`: hue 0.98 and 0.02 are neighbours, so pure red (255, 0, 0) is "Red", not something else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from photo_assets.analysis.images import open_oriented

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
# JPEGs are decoded at 1/2..1/8 scale while at least this size: the 32 x 32 bicubic result stays within
# 1-2 grey levels of a full decode (bench/colour_location.py measures it) at a fraction of the cost.
DECODE_MIN_SIDE = 256
HUE_WEIGHT, SATURATION_WEIGHT, VALUE_WEIGHT = 1.0, 0.5, 0.25
ALGORITHM_VERSION = "colour-v1-circular-hue"


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """colorsys.rgb_to_hsv for an (..., 3) array of floats in 0..1, with the same tie-breaking (red, then green)."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    top = rgb.max(axis=-1)
    bottom = rgb.min(axis=-1)
    spread = top - bottom
    grey = spread == 0
    safe_spread = np.where(grey, 1.0, spread)
    saturation = np.where(grey, 0.0, spread / np.where(top == 0, 1.0, top))
    red_c, green_c, blue_c = ((top - channel) / safe_spread for channel in (red, green, blue))
    hue = np.select(
        [red == top, green == top],
        [blue_c - green_c, 2.0 + red_c - blue_c],
        default=4.0 + green_c - red_c,
    )
    hue = np.where(grey, 0.0, (hue / 6.0) % 1.0)
    return np.stack([hue, saturation, top], axis=-1)


PALETTE_HSV = rgb_to_hsv(np.array(list(PALETTE.values()), dtype=np.float64) / 255.0)


def similarity(pixels_hsv: np.ndarray, palette_hsv: np.ndarray = PALETTE_HSV) -> np.ndarray:
    """(n, k) similarity of n HSV pixels to k HSV palette colours."""
    delta = np.abs(pixels_hsv[:, None, :] - palette_hsv[None, :, :])
    hue_distance = np.minimum(delta[..., 0], 1.0 - delta[..., 0])
    return (
        (1.0 - HUE_WEIGHT * hue_distance)
        * (1.0 - SATURATION_WEIGHT * delta[..., 1])
        * (1.0 - VALUE_WEIGHT * delta[..., 2])
    )


def colour_histogram(image: Image.Image) -> list[tuple[str, float]]:
    """Shares of palette colours >= MIN_SHARE, largest first, for an oriented RGB image."""
    sample = image.convert("RGB").resize(SAMPLE_SIZE, Image.Resampling.BICUBIC)
    pixels = np.asarray(sample, dtype=np.float64).reshape(-1, 3) / 255.0
    votes = similarity(rgb_to_hsv(pixels)).argmax(axis=1)
    shares = np.bincount(votes, minlength=len(COLOUR_NAMES)) / len(votes)
    order = np.argsort(-shares, kind="stable")
    return [(COLOUR_NAMES[index], float(shares[index])) for index in order if shares[index] >= MIN_SHARE]


def histogram_for_path(path: Path) -> list[tuple[str, float]]:
    """Decode (JPEGs at reduced scale) and compute the colour histogram; raises images.PhotoError."""
    return colour_histogram(open_oriented(path, max_side=DECODE_MIN_SIDE))
