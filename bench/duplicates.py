"""How the near-duplicate distance was chosen: the shot distance (photo_assets.analysis.duplicates) between photos and
altered copies of them (the same shot), against photos that only look alike, and the cost of the hashes a photo.

    .venv/bin/python bench/duplicates.py [--shared ../shared] [--people 60] [--library 100000] [--new 1000]

Copies: each photo of ../shared/corpus/gps and ../shared/faces/deepface, altered as a library's copies are: resized
to a half and a quarter, re-encoded as JPEG quality 30 and as PNG, cropped by 5% and 10% of each side, brightened
and darkened by 20%, and both resized and re-encoded. Look-alikes: every pair of photos of one person in
../shared/faces/lfw_train (folders of several photos), every pair of one person in deepface, and every pair of GPS
photos. The hashes are taken as the colour step takes them: from the photo reduced to its small copy's 256 px.

The grouping's cost at a library's scale (--library photos, 0 to skip): the near_duplicates asset's work, group_shots,
on random hashes (a DCT hash sets half its bits, so its bands spread as random ones do) of which 1% are copies of
another photo with 0-4 bits changed; once for the first run (every photo looked up) and once for a run after
--new photos arrived (only those looked up, the earlier groups given).

Flatness: the detail level (the strongest low frequency of the hash's DCT) of every shared photo's small copy, the
corpora's and the lfw_train people's, and of ../shared/corpus/mixed's files that decode: the lowest ones, and the
lowest at or above FLAT_LEVEL, below which a photo is flat and gets no hash.
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools and bench, when run as a script

from photo_assets.analysis.colours import DECODE_MIN_SIDE, small_copy  # noqa: E402
from photo_assets.analysis.duplicates import (  # noqa: E402
    FLAT_LEVEL,
    HASH_BITS,
    MAX_DISTANCE,
    detail_level,
    fingerprints,
    group_shots,
    shot_distance,
)
from photo_assets.analysis.images import PhotoError  # noqa: E402

# Photos smaller than this (the corpus' edge cases) have no quarter-size copy worth the name.
MIN_SIDE = 64


def _reencoded(image: Image.Image, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _cropped(image: Image.Image, share: float) -> Image.Image:
    dx, dy = round(image.width * share), round(image.height * share)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


ALTERATIONS = {
    "half size": lambda image: image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS),
    "quarter size": lambda image: image.resize((image.width // 4, image.height // 4), Image.Resampling.LANCZOS),
    "JPEG q30": lambda image: _reencoded(image, format="JPEG", quality=30),
    "PNG": lambda image: _reencoded(image, format="PNG"),
    "crop 5%": lambda image: _cropped(image, 0.05),
    "crop 10%": lambda image: _cropped(image, 0.10),
    "brighter 20%": lambda image: ImageEnhance.Brightness(image).enhance(1.2),
    "darker 20%": lambda image: ImageEnhance.Brightness(image).enhance(0.8),
    "half size, JPEG q50": lambda image: _reencoded(image.resize((image.width // 2, image.height // 2)), format="JPEG",
                                                    quality=50),
}


def load(path: Path) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


def hashes(image: Image.Image) -> tuple[int, ...]:
    """The photo's hashes as the colour step makes them, from a copy of DECODE_MIN_SIDE px."""
    small = image.copy()
    small.thumbnail((DECODE_MIN_SIDE, DECODE_MIN_SIDE), Image.Resampling.BICUBIC)
    return fingerprints(small)


def random_library(photos: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Three random 64-bit hashes a photo, 1% of the photos a copy of an earlier one with 0-4 bits changed."""
    hashes = [tuple(int(value) for value in rng.integers(-(1 << 63), (1 << 63) - 1, size=3, dtype=np.int64))
              for _ in range(photos)]
    for position in rng.choice(np.arange(1, photos), size=photos // 100, replace=False):
        flips = sum(1 << int(bit) for bit in rng.choice(HASH_BITS - 1, size=rng.integers(0, 5), replace=False))
        hashes[position] = tuple(value ^ flips for value in hashes[int(rng.integers(position))])
    return hashes


def grouping_cost(photos: int, new: int) -> None:
    hashes = random_library(photos, np.random.default_rng(0))
    photo_ids = [f"{position:016x}" for position in range(photos)]
    started = time.perf_counter()
    groups = group_shots(photo_ids, hashes, photo_ids, {})
    first_run = time.perf_counter() - started
    started = time.perf_counter()
    later = group_shots(photo_ids, hashes, photo_ids[-new:], {photo_id: group for photo_id, group in groups.items()
                                                              if photo_id not in set(photo_ids[-new:])})
    incremental = time.perf_counter() - started
    print(f"\ngrouping {photos:,} photos (group_shots, {len(set(groups.values())):,} groups): first run {first_run:.1f} s"
          f" = {1000 * first_run / photos:.3f} ms a photo; a run after {new:,} new photos {incremental:.1f} s"
          f" ({len(later):,} photos in groups)")


def flatness(paths: list[Path]) -> None:
    """The lowest detail levels of the photos' small copies (as the colour step makes them), among those that
    decode: where flat photos end and real ones begin."""
    levels = []
    for path in paths:
        try:
            levels.append((detail_level(small_copy(path)), path.relative_to(path.parents[1])))
        except PhotoError:
            continue  # a broken file of the mixed corpus: the pipeline records its error, it has no hash
    levels.sort()
    real = [level for level, _ in levels if level >= FLAT_LEVEL]
    print(f"\ndetail levels of {len(levels)} photos that decode (flat below {FLAT_LEVEL}): lowest "
          + ", ".join(f"{level:.1f} {name}" for level, name in levels[:8])
          + f"; the lowest at or above the threshold {min(real):.1f}; photos below it {len(levels) - len(real)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--people", type=int, default=60, help="lfw_train people of several photos to pair")
    parser.add_argument("--library", type=int, default=100_000, help="photos of the grouping's cost (0: skip)")
    parser.add_argument("--new", type=int, default=1_000, help="photos new since the last run, of the same")
    args = parser.parse_args()
    originals = sorted((args.shared / "corpus" / "gps").glob("*.jpg")) + sorted(
        (args.shared / "faces" / "deepface").glob("*.jpg"))
    copies: dict[str, list[int]] = {name: [] for name in ALTERATIONS}
    seconds, gps_hashes, flat = [], [], []
    for path in originals:
        image = load(path)
        if min(image.size) < MIN_SIDE:
            continue
        started = time.perf_counter()
        own = hashes(image)
        seconds.append(time.perf_counter() - started)
        if not own:  # flat: no hash, nobody's duplicate
            flat.append(path.name)
            continue
        if path.parent.name == "gps":
            gps_hashes.append(own)
        for name, alter in ALTERATIONS.items():
            altered = hashes(alter(image))
            copies[name].append(shot_distance(own, altered) if altered else HASH_BITS)  # a flat copy is missed
    alike = []
    people = [folder for folder in sorted((args.shared / "faces" / "lfw_train").iterdir())
              if folder.is_dir() and len(list(folder.glob("*.jpg"))) > 1][: args.people]
    for folder in people:
        found = [own for own in (hashes(load(path)) for path in sorted(folder.glob("*.jpg"))) if own]
        alike += [shot_distance(a, b) for a, b in itertools.combinations(found, 2)]
    places = [shot_distance(a, b) for a, b in itertools.combinations(gps_hashes, 2)]
    print(f"flat photos (no hash): {', '.join(flat) or 'none'}")
    print(f"{len(originals) - len(flat)} photos altered 9 ways; {len(alike)} pairs of one person's photos"
          f" ({len(people)} people);"
          f" {len(places)} pairs of GPS photos\n")
    print(f"{'copy':22s} {'median':>6s} {'max':>4s}  within {MAX_DISTANCE}")
    for name, found in copies.items():
        print(f"{name:22s} {np.median(found):6.1f} {max(found):4d}  {np.mean(np.array(found) <= MAX_DISTANCE):.3f}")
    print(f"\n{'threshold':>9s}  copies found  one person's photos grouped  GPS photos grouped")
    every_copy = np.concatenate([np.array(found) for found in copies.values()])
    for threshold in range(2, 17, 2):
        print(f"{threshold:9d}  {np.mean(every_copy <= threshold):12.3f}  {np.mean(np.array(alike) <= threshold):27.4f}"
              f"  {np.mean(np.array(places) <= threshold):18.4f}")
    print(f"\nlook-alikes: closest pair of one person {min(alike)} bits, of GPS photos {min(places)} bits")
    print(f"hashes: median {1000 * float(np.median(seconds)):.2f} ms a photo (reducing the full decode to 256 px"
          " included; the pipeline hashes the colour step's small copy)")
    flatness(originals + [path for folder in people for path in sorted(folder.glob("*.jpg"))]
             + sorted(path for path in (args.shared / "corpus" / "mixed").rglob("*") if path.is_file()))
    if args.library:
        grouping_cost(args.library, args.new)


if __name__ == "__main__":
    main()
