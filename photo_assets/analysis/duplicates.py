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
bands meet, never with the whole library; the lookups run in NumPy over every new photo at once (binary search in
the index sorted by each band), so a first run over a whole library is seconds, not hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ALGORITHM_VERSION = "phash-v2-dct64-centre-crops-no-flat"
SAMPLE_SIDE = 32  # the grey copy the DCT runs on
HASH_SIDE = 8  # the low-frequency block kept: 8 x 8 = 64 bits
HASH_BITS = HASH_SIDE * HASH_SIDE
# A photo whose low frequencies all stay below this (orthonormal DCT of 0-255 grey) is flat: a blank frame, a
# single colour, a 1 px file. Its hash's bits are rounding noise, the same for any flat photo, so it gets none and
# is nobody's near-duplicate. bench/duplicates.py prints the lowest levels of the shared photos.
FLAT_LEVEL = 8.0
# The centre crops hashed beside the whole photo: a share of each side left out.
CROPS = (0.05, 0.10)
# Two photos within this many bits are one shot (bench/duplicates.py: 99.6% of the altered copies of 100 shared
# photos, none of 534 pairs of one person's photos, 1 of 595 pairs of the GPS corpus' photos).
MAX_DISTANCE = 6
BANDS, BAND_BITS = 4, 16
BAND_MASK = np.uint64((1 << BAND_BITS) - 1)
HASHES = 1 + len(CROPS)  # a photo's hashes: the whole photo's, then each crop's
# Every 16-bit mask of at most MAX_DISTANCE // BANDS bits: the band values probed around a hash's own.
PROBES = [mask for mask in range(1 << BAND_BITS) if mask.bit_count() <= MAX_DISTANCE // BANDS]
UNSIGNED = (1 << HASH_BITS) - 1


def _dct_matrix(size: int) -> np.ndarray:
    positions = np.arange(size)
    matrix = np.cos(np.pi * (2 * positions[None, :] + 1) * positions[:, None] / (2 * size))
    matrix[0] /= np.sqrt(2)
    return matrix * np.sqrt(2 / size)


DCT = _dct_matrix(SAMPLE_SIDE)


def _low_frequencies(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L").resize((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.BICUBIC), np.float64)
    return (DCT @ grey @ DCT.T)[:HASH_SIDE, :HASH_SIDE].ravel()


def _level(low: np.ndarray) -> float:
    return float(np.abs(low[1:]).max())


def detail_level(image: Image.Image) -> float:
    """The strongest of the low frequencies a hash is made of (the constant term left out): below FLAT_LEVEL the
    photo is flat and gets no hash."""
    return _level(_low_frequencies(image))


def _hash(image: Image.Image, low: np.ndarray | None = None) -> int:
    low = _low_frequencies(image) if low is None else low
    value = int(np.packbits(low > np.median(low[1:])).view(">u8")[0])
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value  # signed, as Parquet stores it


def fingerprints(image: Image.Image) -> tuple[int, ...]:
    """The hashes of the whole photo and of its CROPS centres, in that order; none for a flat photo."""
    low = _low_frequencies(image)
    if _level(low) < FLAT_LEVEL:
        return ()
    hashes = [_hash(image, low)]
    for share in CROPS:
        dx, dy = round(image.width * share), round(image.height * share)
        hashes.append(_hash(image.crop((dx, dy, image.width - dx, image.height - dy))))
    return tuple(hashes)


def distance(first: int, second: int) -> int:
    return ((first ^ second) & UNSIGNED).bit_count()


def shot_distance(first: Sequence[int], second: Sequence[int]) -> int:
    """How far apart two photos' shots are: one's whole-photo hash against any of the other's hashes."""
    return min(min(distance(first[0], other) for other in second), min(distance(second[0], own) for own in first[1:]))


def _close_pairs(queries: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query row, index row) of every pair of hashes (uint64) within MAX_DISTANCE bits: for each band, the index
    sorted by that band, and each query's band and its PROBES neighbours looked up by binary search."""
    found_queries, found_index = [], []
    for band in range(BANDS):
        shift = np.uint64(band * BAND_BITS)
        index_bands = (index >> shift) & BAND_MASK
        order = np.argsort(index_bands, kind="stable")
        sorted_bands = index_bands[order]
        query_bands = (queries >> shift) & BAND_MASK
        for mask in PROBES:
            keys = query_bands ^ np.uint64(mask)
            low = np.searchsorted(sorted_bands, keys, "left")
            counts = np.searchsorted(sorted_bands, keys, "right") - low
            if not counts.any():
                continue
            rows = np.repeat(np.arange(len(queries)), counts)
            # The k-th candidate of a query sits at its bucket's start + k in the sorted index.
            positions = order[np.arange(counts.sum()) + np.repeat(low - (np.cumsum(counts) - counts), counts)]
            close = np.bitwise_count(queries[rows] ^ index[positions]) <= MAX_DISTANCE
            found_queries.append(rows[close])
            found_index.append(positions[close])
    if not found_queries:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(found_queries), np.concatenate(found_index)


def group_shots(photo_ids: Sequence[str], hashes: Sequence[Sequence[int]], new: Iterable[str],
                previous: dict[str, str]) -> dict[str, str]:
    """photo_id -> group id (the group's smallest photo_id) of every photo with a near-duplicate. Only the `new`
    photos are looked up, each in the index of every photo's hashes; `previous` (the last run's groups) stands for
    the pairs found before."""
    if not photo_ids:
        return {}
    values = np.asarray(hashes, dtype=np.int64).reshape(len(photo_ids), HASHES).view(np.uint64)
    position_of = {photo_id: position for position, photo_id in enumerate(photo_ids)}
    looked_up = np.array([position_of[photo_id] for photo_id in new], dtype=np.int64)
    # A pair is one shot when one's whole-photo hash meets any of the other's hashes: a new photo's whole hash
    # against every hash, and its crops' hashes against every whole hash.
    rows, found = _close_pairs(values[looked_up, 0], values.ravel())
    firsts, seconds = [looked_up[rows]], [found // HASHES]
    rows, found = _close_pairs(values[looked_up, 1:].ravel(), values[:, 0])
    firsts.append(np.repeat(looked_up, HASHES - 1)[rows])
    seconds.append(found)
    first_of_group: dict[str, int] = {}
    for photo_id, group in previous.items():
        if photo_id in position_of:
            firsts.append(np.array([position_of[photo_id]]))
            seconds.append(np.array([first_of_group.setdefault(group, position_of[photo_id])]))
    ends = np.concatenate(firsts), np.concatenate(seconds)
    graph = coo_matrix((np.ones(len(ends[0]), np.int8), ends), shape=(len(photo_ids), len(photo_ids)))
    _, components = connected_components(graph, directed=False)
    members: dict[int, list[str]] = {}
    for photo_id, component in zip(photo_ids, components.tolist()):
        members.setdefault(component, []).append(photo_id)
    return {photo_id: min(group) for group in members.values() if len(group) > 1 for photo_id in group}
