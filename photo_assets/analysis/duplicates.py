"""Near-duplicates: the same shot resized, re-encoded, slightly cropped or brightened, told apart from photos that
only look alike (docs/analysis.md, Near-duplicates).

Each photo gets three 64-bit perceptual hashes of the small copy the colour step decodes anyway (the camera's EXIF
thumbnail, or a decode reduced to 256 px): of the whole photo, and of its centre without 5% and without 10% of each
side. A hash is a DCT hash: grey, 32 x 32, a 2-D DCT, one bit per coefficient of the 8 x 8 lowest frequencies (the
constant term left out of the median) saying whether it is above their median. A copy cropped by 5% of each side is
the original's centre at the same scale, so its whole-photo hash meets the original's 5% hash: two photos are one
shot when one's whole-photo hash is within MAX_DISTANCE bits of any of the other's three. Groups are the connected
pairs.

Candidates come from an index of the hashes' four 16-bit bands (multi-index hashing: two hashes within MAX_DISTANCE
bits differ by at most MAX_DISTANCE // 4 bits on some band), so a new photo is compared with the few photos its
bands meet, never with the whole library.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

ALGORITHM_VERSION = "phash-v1-dct64-centre-crops"
SAMPLE_SIDE = 32  # the grey copy the DCT runs on
HASH_SIDE = 8  # the low-frequency block kept: 8 x 8 = 64 bits
HASH_BITS = HASH_SIDE * HASH_SIDE
# The centre crops hashed beside the whole photo: a share of each side left out.
CROPS = (0.05, 0.10)
# Two photos within this many bits are one shot (bench/duplicates.py: 99.3% of the altered copies of 101 shared
# photos, none of 534 pairs of one person's photos, 1 of 630 pairs of the GPS corpus' photos).
MAX_DISTANCE = 6
BANDS, BAND_BITS = 4, 16
# Every 16-bit mask of at most MAX_DISTANCE // BANDS bits: the band values probed around a hash's own.
PROBES = [mask for mask in range(1 << BAND_BITS) if mask.bit_count() <= MAX_DISTANCE // BANDS]
UNSIGNED = (1 << HASH_BITS) - 1


def _dct_matrix(size: int) -> np.ndarray:
    positions = np.arange(size)
    matrix = np.cos(np.pi * (2 * positions[None, :] + 1) * positions[:, None] / (2 * size))
    matrix[0] /= np.sqrt(2)
    return matrix * np.sqrt(2 / size)


DCT = _dct_matrix(SAMPLE_SIDE)


def _hash(image: Image.Image) -> int:
    grey = np.asarray(image.convert("L").resize((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.BICUBIC), np.float64)
    low = (DCT @ grey @ DCT.T)[:HASH_SIDE, :HASH_SIDE].ravel()
    value = int(np.packbits(low > np.median(low[1:])).view(">u8")[0])
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value  # signed, as Parquet stores it


def fingerprints(image: Image.Image) -> tuple[int, ...]:
    """The hashes of the whole photo and of its CROPS centres, in that order."""
    hashes = [_hash(image)]
    for share in CROPS:
        dx, dy = round(image.width * share), round(image.height * share)
        hashes.append(_hash(image.crop((dx, dy, image.width - dx, image.height - dy))))
    return tuple(hashes)


def distance(first: int, second: int) -> int:
    return ((first ^ second) & UNSIGNED).bit_count()


def shot_distance(first: Sequence[int], second: Sequence[int]) -> int:
    """How far apart two photos' shots are: one's whole-photo hash against any of the other's hashes."""
    return min(min(distance(first[0], other) for other in second), min(distance(second[0], own) for own in first[1:]))


def _bands(value: int) -> list[tuple[int, int]]:
    unsigned = value & UNSIGNED
    return [(band, (unsigned >> (band * BAND_BITS)) & ((1 << BAND_BITS) - 1)) for band in range(BANDS)]


class ShotIndex:
    """Photos by the bands of each of their hashes."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[int, int], set[int]] = {}
        self.photos: list[tuple[int, ...]] = []

    def add(self, hashes: Sequence[int]) -> int:
        position = len(self.photos)
        self.photos.append(tuple(hashes))
        for value in hashes:
            for key in _bands(value):
                self._buckets.setdefault(key, set()).add(position)
        return position

    def near(self, hashes: Sequence[int]) -> dict[int, int]:
        """position -> shot distance of every photo within MAX_DISTANCE of these hashes."""
        candidates = {position for value in hashes for band, own in _bands(value) for mask in PROBES
                      for position in self._buckets.get((band, own ^ mask), ())}
        found = {position: shot_distance(hashes, self.photos[position]) for position in candidates}
        return {position: gap for position, gap in found.items() if gap <= MAX_DISTANCE}


def group_shots(photo_ids: Sequence[str], hashes: Sequence[Sequence[int]], new: Iterable[str],
                previous: dict[str, str]) -> dict[str, str]:
    """photo_id -> group id (the group's smallest photo_id) of every photo with a near-duplicate. Only the `new`
    photos are looked up in the index; `previous` (the last run's groups) stands for the pairs found before."""
    index, parent = ShotIndex(), list(range(len(photo_ids)))
    for value in hashes:
        index.add(value)

    def root(position: int) -> int:
        while parent[position] != position:
            parent[position] = parent[parent[position]]
            position = parent[position]
        return position

    position_of = {photo_id: position for position, photo_id in enumerate(photo_ids)}
    first_of_group: dict[str, int] = {}
    for photo_id, group in previous.items():
        if photo_id in position_of:
            first = first_of_group.setdefault(group, position_of[photo_id])
            parent[root(position_of[photo_id])] = root(first)
    for photo_id in new:
        position = position_of[photo_id]
        for other in index.near(hashes[position]):
            parent[root(position)] = root(other)
    members: dict[int, list[str]] = {}
    for position, photo_id in enumerate(photo_ids):
        members.setdefault(root(position), []).append(photo_id)
    return {photo_id: min(group) for group in members.values() if len(group) > 1 for photo_id in group}
