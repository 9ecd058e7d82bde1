"""Hybrid matching: each face's nearest faces, as one table that clustering and suggestions share.

Between faces indexed with their current embedding, the neighbours recorded at the last index build; between a face
embedded since and the indexed ones, an index query; among the faces embedded since, brute force (or the inverted
file when they are many). A face re-embedded since the build (a new model) counts as new. The candidates are
symmetrised (a face is a candidate of its own neighbours), so the index's answer and brute force's agree whenever the
index finds the true neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis.people.index import (
    BRUTE_FORCE_MAX_PAIRS,
    NEIGHBOURS,
    FaceIndex,
    nearest_neighbours,
    query_all,
)

# Up to this many pairs the whole table is exact, whatever the index holds: brute force costs seconds there, and
# approximate neighbours cost recall.
EXACT_TABLE_MAX_PAIRS = BRUTE_FORCE_MAX_PAIRS
from photo_assets.analysis.people.vectors import fingerprints

@dataclass(frozen=True)
class NeighbourTable:
    """Each face's nearest other faces, nearest first: positions (-1 where fewer) and squared distances (inf)."""

    rows: np.ndarray  # (faces, k) int64
    squared: np.ndarray  # (faces, k) float32
    indexed: int  # faces whose neighbours among indexed faces came from the last index build
    fresh: int  # faces embedded since: the index was queried for them, and they were compared among themselves


def _valid_items(face_ids: np.ndarray, vectors: np.ndarray, index: FaceIndex | None) -> np.ndarray:
    """Each face's item in the index, or -1 when it is not there with its current embedding."""
    if index is None or not len(index):
        return np.full(len(face_ids), -1, dtype=np.int64)
    items = pc.index_in(pa.array(face_ids.tolist(), pa.string()), pa.array(index.face_ids.tolist(), pa.string()))
    item_of = items.fill_null(-1).to_numpy().astype(np.int64)
    known = np.flatnonzero(item_of >= 0)
    item_of[known[index.fingerprints[item_of[known]] != fingerprints(vectors[known])]] = -1
    return item_of


def query_index(index: FaceIndex, vectors: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest indexed items to each vector: (items, distances), -1 / inf where fewer exist."""
    return query_all(index.annoy, vectors, k, by_item=False)


def _candidates(rows: np.ndarray, neighbours: np.ndarray, distances: np.ndarray):
    first = np.repeat(rows, neighbours.shape[1])
    second, squared = neighbours.ravel(), distances.ravel().astype(np.float32) ** 2
    valid = (second >= 0) & (second != first)
    return first[valid], second[valid], squared[valid]


def _nearest_k(count: int, first: np.ndarray, second: np.ndarray, squared: np.ndarray, k: int):
    """Per face, the k nearest distinct candidates of both directions: (rows, squared) tables."""
    both_first, both_second = np.r_[first, second], np.r_[second, first]
    both_squared = np.r_[squared, squared]
    order = np.lexsort((both_second, both_squared, both_first))
    both_first, both_second, both_squared = both_first[order], both_second[order], both_squared[order]
    pair = both_first * count + both_second
    _, first_seen = np.unique(pair, return_index=True)  # the same pair found twice (both directions, two sources)
    keep = np.zeros(len(pair), bool)
    keep[first_seen] = True
    both_first, both_second, both_squared = both_first[keep], both_second[keep], both_squared[keep]
    rank = np.arange(len(both_first)) - np.searchsorted(both_first, both_first)
    chosen = rank < k
    table = np.full((count, k), -1, np.int64)
    distances = np.full((count, k), np.inf, np.float32)
    table[both_first[chosen], rank[chosen]] = both_second[chosen]
    distances[both_first[chosen], rank[chosen]] = both_squared[chosen]
    return table, distances


def neighbour_table(face_ids, vectors: np.ndarray, index: FaceIndex | None, k: int = NEIGHBOURS) -> NeighbourTable:
    """Each face's k nearest faces among `vectors` (unit vectors), the hybrid way."""
    count = len(vectors)
    face_ids = np.asarray(face_ids, dtype=object)
    if count**2 <= EXACT_TABLE_MAX_PAIRS:
        index = None  # brute force is affordable: exact neighbours among all the faces, whatever the index holds
    item_of = _valid_items(face_ids, vectors, index)
    indexed, fresh = np.flatnonzero(item_of >= 0), np.flatnonzero(item_of < 0)
    parts = []
    if len(indexed):
        position_of_item = np.full(len(index) + 1, -1, dtype=np.int64)  # the extra slot maps "no item" (-1)
        position_of_item[item_of[indexed]] = indexed
        recorded = index.neighbours[item_of[indexed]]
        parts.append(_candidates(indexed, position_of_item[recorded], index.distances[item_of[indexed]]))
        if len(fresh):
            items, distances = query_index(index, vectors[fresh], k)
            parts.append(_candidates(fresh, position_of_item[items], distances))
    if len(fresh):
        among, distances = nearest_neighbours(vectors[fresh], k)
        parts.append(_candidates(fresh, np.where(among >= 0, fresh[np.maximum(among, 0)], -1), distances))
    first, second, squared = (np.concatenate([part[i] for part in parts]) if parts else np.empty(0) for i in range(3))
    rows, squared = _nearest_k(count, first.astype(np.int64), second.astype(np.int64), squared.astype(np.float32), k)
    return NeighbourTable(rows, squared, len(indexed), len(fresh))
