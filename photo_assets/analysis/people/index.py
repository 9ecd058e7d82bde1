"""The face index: an Annoy forest over unit vectors (for the faces embedded after it was built), with each indexed
face's nearest neighbours recorded at build time — exact where brute force is affordable, else from an inverted file
in numpy, which finds far more of the true neighbours than Annoy's own queries at the same cost. The storage layer
saves and loads it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from annoy import AnnoyIndex

from photo_assets.analysis.people.vectors import fingerprints, normalise

# Annoy forest and queries, chosen by bench/people_scale.py --trees-sweep at 100k generated faces: recall@10 grows
# with the nodes a query inspects (search_k) far more than with trees (10 -> 20 trees: 0.63 -> 0.66), while
# person_clusters' result does not move (BCubed F 0.905-0.910 from recall 0.35 to 0.66: any few same-person
# neighbours are enough to find a person). 10 trees keep the file and the build small; 40 x k nodes per query buy
# the recall that is cheap.
INDEX_TREES = 10
SEARCH_K_PER_NEIGHBOUR = 40
# Neighbours per face in the table clustering and suggestions share. Founding uses the nearest 5 (refinement) and
# the threshold; suggestions want candidates: recall after 300 clicks on lfw_train with 10 / 15 / 20 / 30 neighbours:
# 0.813 / 0.817 / 0.820 / 0.821, while the query cost grows with k.
NEIGHBOURS = 30
# Brute force costs ~15 ns a pair on 2 cores, under load: up to this many pairs (~14k faces, a few seconds) the
# neighbours of every face are exact; approximate ones cost recall (lfw_train through the pipeline with Annoy's:
# recall after the clicks 0.817 instead of 0.821).
BRUTE_FORCE_MAX_PAIRS = 200_000_000
# The inverted file beyond that: at 300k generated faces and 30 neighbours, recall@10 0.953 in ~30 s on 2 busy cores,
# where Annoy (10 trees, 40 x k nodes a query) reached 0.69 in over 100 s. Probing 12 of 2 sqrt(n) cells.
IVF_PROBE = 12
IVF_ITERATIONS = 8
IVF_TRAINING_SAMPLE = 30_000
IVF_SEED = 0
IVF_BLOCK = 65536
# Brute force works in blocks of queries holding at most this many similarities (64 MB, plus sorting scratch).
BRUTE_FORCE_BLOCK_ELEMENTS = 16_000_000
# Faces sampled to measure the index's recall@10 against brute force.
RECALL_SAMPLE = 500
RECALL_AT = 10
# Annoy's trees are random: a fixed seed makes a rebuild of the same faces the same index.
ANNOY_SEED = 1


@dataclass
class FaceIndex:
    """An Annoy forest over normalised embeddings, which face each item is, and each item's nearest items."""

    annoy: AnnoyIndex
    face_ids: np.ndarray  # str, item order
    fingerprints: np.ndarray  # uint64 per item
    neighbours: np.ndarray  # (items, NEIGHBOURS) int32 item numbers, -1 where fewer exist
    distances: np.ndarray  # (items, NEIGHBOURS) float32 euclidean distances
    info: dict

    def __len__(self) -> int:
        return len(self.face_ids)


def new_annoy(vectors: np.ndarray, trees: int) -> AnnoyIndex:
    annoy = AnnoyIndex(vectors.shape[1], "euclidean")
    annoy.set_seed(ANNOY_SEED)
    for item, vector in enumerate(vectors):
        annoy.add_item(item, vector)
    annoy.build(trees, n_jobs=-1)
    return annoy


def query_vectors(annoy: AnnoyIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest items for each query vector (items, euclidean distances; -1 / inf where fewer), on every core:
    Annoy releases the GIL."""
    search_k = SEARCH_K_PER_NEIGHBOUR * k
    found = np.full((len(queries), k), -1, dtype=np.int32)
    distances = np.full((len(queries), k), np.inf, dtype=np.float32)

    def fill(row: int) -> None:
        items, dists = annoy.get_nns_by_vector(queries[row], k, search_k, True)
        found[row, : len(items)] = items
        distances[row, : len(dists)] = dists

    with ThreadPoolExecutor() as pool:
        list(pool.map(fill, range(len(queries)), chunksize=256))
    return found, distances


def brute_force_neighbours(
    queries: np.ndarray,
    vectors: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `vectors` for each query (unit vectors), exactly, in blocks; `exclude[i]` is query i's
    own row (or -1). Returns (rows, distances), both (queries, k), -1 / inf where fewer exist."""
    found = np.full((len(queries), k), -1, dtype=np.int32)
    distances = np.full((len(queries), k), np.inf, dtype=np.float32)
    k_eff = min(k, len(vectors) - (exclude is not None))
    if k_eff <= 0:
        return found, distances
    rows_per_block = max(1, BRUTE_FORCE_BLOCK_ELEMENTS // len(vectors))
    for start in range(0, len(queries), rows_per_block):
        block = queries[start : start + rows_per_block]
        similarity = block @ vectors.T
        if exclude is not None:
            own = exclude[start : start + len(block)]
            similarity[np.flatnonzero(own >= 0), own[own >= 0]] = -np.inf
        top = np.argpartition(-similarity, k_eff - 1, axis=1)[:, :k_eff]
        rows, columns = np.repeat(np.arange(len(block)), k_eff), top.ravel()
        values = similarity[rows, columns]
        order = np.lexsort((columns, -values, rows))
        rows, columns, values = rows[order], columns[order], values[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position within its query's row
        keep = rank < k_eff
        found[start + rows[keep], rank[keep]] = columns[keep]
        distances[start + rows[keep], rank[keep]] = np.sqrt(np.maximum(2.0 - 2.0 * values[keep], 0.0))
    return found, distances


def index_recall(index: FaceIndex, vectors: np.ndarray, sample: int = RECALL_SAMPLE, k: int = RECALL_AT) -> float:
    """Share of the true k nearest neighbours (brute force) among the neighbours the index recorded for each face,
    over a fixed sample of items: what person_clusters works from."""
    if len(index) < 2:
        return 1.0
    chosen = np.random.default_rng(0).choice(len(index), size=min(sample, len(index)), replace=False)
    k = min(k, len(index) - 1)
    found = index.neighbours[chosen, :k]
    truth, _ = brute_force_neighbours(vectors[chosen], vectors, k, exclude=chosen)
    hits = sum(len(set(row) & set(true_row)) for row, true_row in zip(found.tolist(), truth.tolist()))
    return hits / (len(chosen) * k)


def _inverted_file_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest rows of every row: spherical k-means cells (2 sqrt(n), trained on a sample), each cell's
    faces compared exactly with the faces of the IVF_PROBE cells nearest it. Returns (rows, euclidean distances)."""
    count = len(vectors)
    cells = max(1, int(2 * np.sqrt(count)))
    rng = np.random.default_rng(IVF_SEED)
    train = vectors[rng.choice(count, min(IVF_TRAINING_SAMPLE, count), replace=False)]
    centroids = train[rng.choice(len(train), cells, replace=False)].copy()
    for _ in range(IVF_ITERATIONS):
        assigned = np.argmax(train @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assigned, train)
        empty = np.bincount(assigned, minlength=cells) == 0
        sums[empty] = train[rng.choice(len(train), int(empty.sum()))]
        centroids = normalise(sums)
    cell = np.concatenate([np.argmax(vectors[start : start + IVF_BLOCK] @ centroids.T, axis=1)
                           for start in range(0, count, IVF_BLOCK)])
    order = np.argsort(cell, kind="stable")
    starts = np.searchsorted(cell[order], np.arange(cells + 1))
    probed = np.argsort(-(centroids @ centroids.T), axis=1)[:, :IVF_PROBE]
    found = np.full((count, k), -1, np.int32)
    distances = np.full((count, k), np.inf, np.float32)
    for own in range(cells):
        members = order[starts[own] : starts[own + 1]]
        candidates = np.concatenate([order[starts[other] : starts[other + 1]] for other in probed[own]])
        wanted = min(k, len(candidates) - 1)
        if not len(members) or wanted <= 0:
            continue
        similarity = vectors[members] @ vectors[candidates].T
        similarity[members[:, None] == candidates[None, :]] = -np.inf
        top = np.argpartition(-similarity, wanted - 1, axis=1)[:, :wanted]
        values = np.take_along_axis(similarity, top, 1)
        nearest_first = np.argsort(-values, axis=1)
        found[members, :wanted] = candidates[np.take_along_axis(top, nearest_first, 1)]
        distances[members, :wanted] = np.sqrt(np.maximum(2.0 - 2.0 * np.take_along_axis(values, nearest_first, 1), 0))
    return found, distances


def nearest_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows (rows, euclidean distances; -1 / inf where fewer): exact by brute force when
    affordable, else from the inverted file."""
    if len(vectors) ** 2 <= BRUTE_FORCE_MAX_PAIRS:
        return brute_force_neighbours(vectors, vectors, k, np.arange(len(vectors)))
    return _inverted_file_neighbours(np.ascontiguousarray(vectors, dtype=np.float32), k)


def build_index(face_ids, embeddings: np.ndarray, trees: int = INDEX_TREES) -> FaceIndex:
    """Index the faces and record each one's nearest indexed faces; `info` holds what the UI shows."""
    started = time.monotonic()
    vectors = normalise(embeddings)
    annoy = new_annoy(vectors, trees)
    built = time.monotonic()
    neighbours, distances = nearest_neighbours(vectors, NEIGHBOURS)
    index = FaceIndex(
        annoy, np.asarray(face_ids, dtype=object), fingerprints(vectors), neighbours, distances, info={}
    )
    index.info = {
        "faces": len(vectors),
        "trees": trees,
        "neighbours": NEIGHBOURS,
        "tree_build_seconds": round(built - started, 3),
        "build_seconds": round(time.monotonic() - started, 3),
        "built_at": time.time(),
    }
    index.info[f"recall_at_{RECALL_AT}"] = round(index_recall(index, vectors), 4)
    return index
