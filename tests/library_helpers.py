"""Small real photo libraries made on the fly for tests."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_photo(path: Path, seed: int, size: tuple[int, int] = (96, 64)) -> Path:
    """A small JPEG with content unique to `seed` (so its content hash is unique too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def make_library(root: Path, count: int, folder: str = "") -> list[Path]:
    return [write_photo(root / folder / f"photo_{index:03d}.jpg", seed=index) for index in range(count)]
