"""Small real photo libraries made on the fly for tests."""

import json
import shutil
from collections.abc import Callable
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


def copy_portraits(
    source: Path, library: Path, people: list[str], which: slice, copy: Callable[[Path, Path], object] = shutil.copyfile
) -> list[str]:
    """Portraits of `people` from a labelled set (`identities.json`: person -> file names), the `which` slice of each
    person's, copied by `copy` into a folder named after the person (the truth people are judged by). Returns their
    paths in the library, `person/name`."""
    identities = json.loads((source / "identities.json").read_text())
    copied = []
    for person in people:
        (library / person).mkdir(parents=True, exist_ok=True)
        for name in identities[person][which]:
            copy(source / name, library / person / name)
            copied.append(f"{person}/{name}")
    return copied
