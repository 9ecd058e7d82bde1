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
    query_vectors,
)
from photo_assets.analysis.people.vectors import fingerprints

# Up to this many pairs the whole table is exact, whatever the index holds: brute force costs seconds there, and
# approximate neighbours cost recall.
EXACT_TABLE_MAX_PAIRS = BRUTE_FORCE_MAX_PAIRS
# A new face is offered to the rows of this many times k indexed faces around it.
REVERSE_REACH = 3


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
    return query_vectors(index.annoy, vectors, k)


def _candidates(rows: np.ndarray, neighbours: np.ndarray, distances: np.ndarray):
    """(first, second, squared distance) for each valid neighbour of `rows`, both directions: a face is a candidate
    of the faces it found."""
    first = np.repeat(rows, neighbours.shape[1])
    second, squared = neighbours.ravel(), distances.ravel().astype(np.float32) ** 2
    valid = (second >= 0) & (second != first)
    first, second, squared = first[valid], second[valid], squared[valid]
    return np.r_[first, second], np.r_[second, first], np.r_[squared, squared]


def _merge_nearest(table: np.ndarray, squared: np.ndarray, first, second, distance, k: int) -> None:
    """Fold candidate pairs into the rows of the table they concern, keeping each row's k nearest distinct ones."""
    rows = np.unique(first)
    present = table[rows]
    valid = present >= 0
    first = np.r_[np.repeat(rows, k)[valid.ravel()], first]
    second = np.r_[present[valid], second]
    distance = np.r_[squared[rows][valid], distance]
    order = np.lexsort((second, distance, first))
    first, second, distance = first[order], second[order], distance[order]
    _, first_seen = np.unique(first * len(table) + second, return_index=True)
    keep = np.zeros(len(first), bool)
    keep[first_seen] = True
    first, second, distance = first[keep], second[keep], distance[keep]
    rank = np.arange(len(first)) - np.searchsorted(first, first)
    chosen = rank < k
    table[rows], squared[rows] = -1, np.inf
    table[first[chosen], rank[chosen]] = second[chosen]
    squared[first[chosen], rank[chosen]] = distance[chosen]


def neighbour_table(face_ids, vectors: np.ndarray, index: FaceIndex | None, k: int = NEIGHBOURS) -> NeighbourTable:
    """Each face's k nearest faces among `vectors` (unit vectors), the hybrid way: the indexed faces' rows start
    from what the build recorded, and only the rows the faces embedded since touch are merged again."""
    count = len(vectors)
    face_ids = np.asarray(face_ids, dtype=object)
    if count**2 <= EXACT_TABLE_MAX_PAIRS:
        index = None  # brute force is affordable: exact neighbours among all the faces, whatever the index holds
    item_of = _valid_items(face_ids, vectors, index)
    indexed, fresh = np.flatnonzero(item_of >= 0), np.flatnonzero(item_of < 0)
    if not len(indexed):
        rows, distances = nearest_neighbours(vectors, k)
        return NeighbourTable(rows.astype(np.int64), distances.astype(np.float32) ** 2, 0, count)
    table = np.full((count, k), -1, np.int64)
    squared = np.full((count, k), np.inf, np.float32)
    position_of_item = np.full(len(index) + 1, -1, dtype=np.int64)  # the extra slot maps "no item" (-1)
    position_of_item[item_of[indexed]] = indexed
    recorded = position_of_item[index.neighbours[item_of[indexed], :k]]
    table[indexed] = recorded
    squared[indexed] = np.where(recorded >= 0, index.distances[item_of[indexed], :k].astype(np.float32) ** 2, np.inf)
    if len(fresh):
        # Wider than k: a new face belongs in the rows of indexed faces it is near, even where they are not among
        # its own k nearest (the relation is not symmetric).
        items, distances = query_index(index, vectors[fresh], REVERSE_REACH * k)
        among, among_distances = nearest_neighbours(vectors[fresh], k)
        parts = [_candidates(fresh, position_of_item[items], distances),
                 _candidates(fresh, np.where(among >= 0, fresh[np.maximum(among, 0)], -1), among_distances)]
        first, second, distance = (np.concatenate([part[i] for part in parts]) for i in range(3))
        is_fresh = np.zeros(count, bool)
        is_fresh[fresh] = True
        wanted = is_fresh[first] | (distance < squared[first, -1])  # an indexed row takes only what beats its k-th
        _merge_nearest(table, squared, first[wanted], second[wanted], distance[wanted], k)
    order = np.argsort(squared, axis=1, kind="stable")  # faces of other libraries left holes: nearest first again
    return NeighbourTable(np.take_along_axis(table, order, 1), np.take_along_axis(squared, order, 1), len(indexed),
                          len(fresh))
