"""Hybrid matching: each face's nearest faces, from the last index build where it holds the face with its current
embedding, and by brute force (or a throwaway forest) for faces embedded since."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis.people.index import (
    INDEX_TREES,
    NEIGHBOURS,
    FaceIndex,
    brute_force_neighbours,
    new_annoy,
    query_all,
)
from photo_assets.analysis.people.vectors import fingerprints

# Faces embedded since the last build are compared among themselves by brute force (~15 ns a pair on 2 cores, under
# load); beyond this many pairs (~14k new faces: a first run, a model change) a throwaway Annoy forest of them is
# cheaper (~0.25 ms a face to build and query).
BRUTE_FORCE_MAX_PAIRS = 200_000_000


@dataclass(frozen=True)
class NeighbourGraph:
    """Undirected candidate edges between face positions (first < second), and how they were found."""

    first: np.ndarray
    second: np.ndarray
    indexed: int  # faces whose neighbours among indexed faces came from the last index build
    fresh: int  # faces embedded since: the index was queried for them, and they were compared among themselves


def _edges(
    rows: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, max_squared: float
) -> tuple[np.ndarray, np.ndarray]:
    first = np.repeat(rows, neighbours.shape[1])
    second = neighbours.ravel()
    valid = (second >= 0) & (second != first) & (distances.ravel() ** 2 < max_squared)
    return first[valid], second[valid]


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


def neighbours_among(vectors: np.ndarray, max_squared: float, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows (rows, distances): vectorised brute force, or a throwaway Annoy forest
    when the rows are too many for that."""
    if len(vectors) ** 2 <= BRUTE_FORCE_MAX_PAIRS:
        return brute_force_neighbours(vectors, vectors, k, np.arange(len(vectors)), max_squared)
    return query_all(new_annoy(vectors, INDEX_TREES), np.arange(len(vectors)), k, by_item=True)


def neighbour_graph(
    face_ids, vectors: np.ndarray, index: FaceIndex | None, max_squared: float, k: int = NEIGHBOURS
) -> NeighbourGraph:
    """Each face's k nearest faces closer than sqrt(`max_squared`), the hybrid way: between faces indexed with their current embedding, the
    neighbours recorded at build time; between a face embedded since and the indexed ones, an index query; among
    the faces embedded since, brute force. A face re-embedded since the build (a new model) counts as new."""
    count = len(vectors)
    face_ids = np.asarray(face_ids, dtype=object)
    item_of = _valid_items(face_ids, vectors, index)
    indexed, fresh = np.flatnonzero(item_of >= 0), np.flatnonzero(item_of < 0)
    parts = []
    if len(indexed):
        position_of_item = np.full(len(index) + 1, -1, dtype=np.int64)  # the extra slot maps "no item" (-1)
        position_of_item[item_of[indexed]] = indexed
        recorded = index.neighbours[item_of[indexed]]
        parts.append(_edges(indexed, position_of_item[recorded], index.distances[item_of[indexed]], max_squared))
        if len(fresh):
            items, distances = query_index(index, vectors[fresh], k)
            parts.append(_edges(fresh, position_of_item[items], distances, max_squared))
    if len(fresh):
        among, distances = neighbours_among(vectors[fresh], max_squared, k)
        parts.append(_edges(fresh, np.where(among >= 0, fresh[np.maximum(among, 0)], -1), distances, max_squared))
    first = np.concatenate([part[0] for part in parts]).astype(np.int64) if parts else np.empty(0, np.int64)
    second = np.concatenate([part[1] for part in parts]).astype(np.int64) if parts else np.empty(0, np.int64)
    low, high = np.minimum(first, second), np.maximum(first, second)
    unique = np.unique(low * count + high)
    return NeighbourGraph(unique // count, unique % count, len(indexed), len(fresh))
