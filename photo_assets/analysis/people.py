"""People: group face embeddings into persons a user can name, and keep the user's word over every re-run.

Pipeline (SPEC: Faces 4-7):
1. Embeddings are L2-normalised: FaceNet's raw length varies with image quality, not identity, and on unit vectors
   the Euclidean distance, the cosine and the mean squared distance between groups are one family of measures.
2. The face index: an Annoy forest (euclidean on the normalised vectors) plus, computed once at build time, each
   indexed face's nearest neighbours. Saved atomically: a new build's files are written beside the old ones, then
   `current.json` is replaced in one rename to point at them.
3. Hybrid matching: faces embedded after the last build (absent from it, or with a different embedding, as after a
   model change) get their neighbours by vectorised brute force against every face; the rest come from the index.
4. Clustering: average linkage on the neighbour graph. Linkage between two groups is the mean squared distance over
   *all* their pairs, computed exactly from the groups' vector sums (for unit vectors it is 2 - 2 * mean cosine),
   so the graph only proposes which groups to compare; no O(n^2) matrix is ever formed. Groups merge in rounds of
   reciprocal nearest pairs (valid for average linkage, which is reducible), below a threshold chosen by measurement
   to prefer splitting one person into two groups over merging two people.
5. The user's edits (photo_assets.labels): faces the user placed seed their person, groups holding seeds of two
   different people never merge, a face rejected from a person never joins it, and a group holding a person's seeds
   is that person. Unnamed groups are "Unknown person NNNNNN" and keep their number when they grow or are recomputed
   (matched to the previous run's groups by shared faces); a new number is derived from the group's faces, so a
   recomputation from scratch gives the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from annoy import AnnoyIndex

from photo_assets.labels import LabelState
from photo_assets.library import write_atomically

# Where the person_clusters outputs and the face index live, relative to the data folder.
CLUSTERS_DIR = Path("person_clusters")
FACES_PATH = CLUSTERS_DIR / "faces.parquet"
PEOPLE_PATH = CLUSTERS_DIR / "people.parquet"
INDEX_DIR = Path("face_index")
INDEX_POINTER = "current.json"
# FaceNet-128.
EMBEDDING_DIMS = 128

# Annoy forest and queries, chosen by bench/people_scale.py --trees-sweep at 100k generated faces: recall@10 grows
# with the nodes a query inspects (search_k) far more than with trees (10 -> 20 trees: 0.63 -> 0.66), while
# person_clusters' result does not move (BCubed F 0.905-0.910 from recall 0.35 to 0.66: any few same-person
# neighbours are enough to find a person). 10 trees keep the file and the build small; 40 x k nodes per query buy
# the recall that is cheap.
INDEX_TREES = 10
SEARCH_K_PER_NEIGHBOUR = 40
# Neighbours per face in the clustering graph; lfw_dev's result is the same from 3 to 20.
NEIGHBOURS = 10
# Founding groups: average-linkage threshold on the mean squared distance between two groups of unit vectors
# (= 2 - 2 mean cosine). bench/people_quality.py: lfw_dev keeps pairwise precision 0.994-0.995 from 0.80 to 0.92
# and falls to 0.978 at 0.95; 0.85 leaves that margin for harder libraries (look-alike relatives, children).
LINKAGE_THRESHOLD = 0.85
# Groups this small after founding are leftovers (a blurred shot, an odd angle), not yet people of their own...
LEFTOVER_MAX_FACES = 2
# ...and join an established group when their mean squared distance to it is below this,
ATTACH_THRESHOLD = 0.95
# and at least this much below their distance to any other group: a clear choice, never a coin toss between two
# look-alikes. On lfw_dev this lifts BCubed recall from 0.88 to 0.95 at the same precision.
ATTACH_MARGIN = 0.2
# Neighbours farther than this (squared) are left out of the graph: a merge below LINKAGE_THRESHOLD has a closer
# pair to go by, and a group whose faces are all this far is never a leftover's best nor its runner-up.
NEIGHBOUR_MAX_SQUARED = ATTACH_THRESHOLD + ATTACH_MARGIN
# Faces embedded since the last build are compared among themselves by brute force (~15 ns a pair on 2 cores, under
# load); beyond this many pairs (~14k new faces: a first run, a model change) a throwaway Annoy forest of them is
# cheaper (~0.25 ms a face to build and query).
BRUTE_FORCE_MAX_PAIRS = 200_000_000
# Brute force works in blocks of queries holding at most this many similarities (64 MB, plus sorting scratch).
BRUTE_FORCE_BLOCK_ELEMENTS = 16_000_000
# Pairs whose linkage is computed at once: bounds the gathered rows (2 x pairs x 128 x 8 bytes = 34 MB).
LINKAGE_BLOCK = 16384
# Faces sampled to measure the index's recall@10 against brute force.
RECALL_SAMPLE = 500
RECALL_AT = 10
# Unknown people get a number of this many digits, derived from their faces (the same data gives the same numbers).
UNKNOWN_DIGITS = 6
UNKNOWN_NAME = "Unknown person {number}"
# Annoy's trees are random: a fixed seed makes a rebuild of the same faces the same index.
ANNOY_SEED = 1
ASSIGNED_BY_USER, ASSIGNED_BY_AUTO = "user", "auto"

FACE_SCHEMA = pa.schema(
    [
        ("face_id", pa.string()),
        ("photo_id", pa.string()),
        ("person_id", pa.string()),  # null only for a face the user said is not a face
        ("person_name", pa.string()),
        ("assigned_by", pa.string()),
        # Root-mean-square distance (normalised embeddings) to the person's other faces: how typical the face is.
        ("distance", pa.float32()),
    ]
)
PEOPLE_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("name", pa.string()),
        ("named", pa.bool_()),
        ("faces", pa.int64()),
        ("photos", pa.int64()),
        ("representative_face_id", pa.string()),
    ]
)


def normalise(embeddings: np.ndarray) -> np.ndarray:
    vectors = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """One uint64 per row that changes when the row's values change: tells a face indexed with its current
    embedding from one re-embedded since (a new model, a re-run detector)."""
    bits = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32).astype(np.uint64)
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=bits.shape[1], dtype=np.uint64) | np.uint64(1)
    return (bits * multipliers).sum(axis=1, dtype=np.uint64)  # wraps modulo 2^64: a hash, not a sum


# -- the index ---------------------------------------------------------------------------------------------------


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


def _new_annoy(vectors: np.ndarray, trees: int) -> AnnoyIndex:
    annoy = AnnoyIndex(vectors.shape[1], "euclidean")
    annoy.set_seed(ANNOY_SEED)
    for item, vector in enumerate(vectors):
        annoy.add_item(item, vector)
    annoy.build(trees, n_jobs=-1)
    return annoy


def _query_all(annoy: AnnoyIndex, queries, k: int, by_item: bool) -> tuple[np.ndarray, np.ndarray]:
    """k nearest items for each query (an item number or a vector), on every core: Annoy releases the GIL."""
    search_k = SEARCH_K_PER_NEIGHBOUR * k
    lookup = annoy.get_nns_by_item if by_item else annoy.get_nns_by_vector
    found = np.full((len(queries), k), -1, dtype=np.int32)
    distances = np.full((len(queries), k), np.inf, dtype=np.float32)

    def fill(row: int) -> None:
        query = int(queries[row]) if by_item else queries[row]
        items, dists = lookup(query, k + 1 if by_item else k, search_k, True)
        if by_item:  # drop the item itself (usually first; ties may move it)
            keep = [position for position, item in enumerate(items) if item != query][:k]
            items, dists = [items[p] for p in keep], [dists[p] for p in keep]
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
    max_squared: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `vectors` for each query (unit vectors), exactly, in blocks; `exclude[i]` is query i's
    own row (or -1), and rows farther than `max_squared` (squared distance) are not wanted. Returns (rows,
    distances), both (queries, k), -1 / inf where fewer exist."""
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
        if max_squared is None:
            top = np.argpartition(-similarity, k_eff - 1, axis=1)[:, :k_eff]
            rows = np.repeat(np.arange(len(block)), k_eff)
            columns = top.ravel()
        else:  # near pairs are few: picking them out beats partitioning every row
            rows, columns = np.nonzero(similarity > 1.0 - max_squared / 2.0)
        values = similarity[rows, columns]
        order = np.lexsort((columns, -values, rows))
        rows, columns, values = rows[order], columns[order], values[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position within its query's row
        keep = rank < k_eff
        found[start + rows[keep], rank[keep]] = columns[keep]
        distances[start + rows[keep], rank[keep]] = np.sqrt(np.maximum(2.0 - 2.0 * values[keep], 0.0))
    return found, distances


def index_recall(index: FaceIndex, vectors: np.ndarray, sample: int = RECALL_SAMPLE, k: int = RECALL_AT) -> float:
    """Share of the true k nearest neighbours (brute force) that the index returns, over a fixed sample of items."""
    if len(index) < 2:
        return 1.0
    chosen = np.random.default_rng(0).choice(len(index), size=min(sample, len(index)), replace=False)
    k = min(k, len(index) - 1)
    found, _ = _query_all(index.annoy, chosen, k, by_item=True)
    truth, _ = brute_force_neighbours(vectors[chosen], vectors, k, exclude=chosen)
    hits = sum(len(set(row) & set(true_row)) for row, true_row in zip(found.tolist(), truth.tolist()))
    return hits / (len(chosen) * k)


def build_index(face_ids, embeddings: np.ndarray, trees: int = INDEX_TREES) -> FaceIndex:
    """Index the faces and record each one's nearest indexed faces; `info` holds what the UI shows."""
    started = time.monotonic()
    vectors = normalise(embeddings)
    annoy = _new_annoy(vectors, trees)
    built = time.monotonic()
    neighbours, distances = _query_all(annoy, np.arange(len(vectors)), NEIGHBOURS, by_item=True)
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


def save_index(index: FaceIndex, directory: Path) -> Path:
    """Write a build's files under fresh names, then switch `current.json` to them in one atomic rename; builds
    older than the previous one are removed (a reader still holding the previous one keeps working)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.time_ns()}"
    annoy_name, faces_name = f"index-{stamp}.ann", f"faces-{stamp}.parquet"
    temporary = directory / f".{annoy_name}.tmp"
    index.annoy.save(str(temporary))
    temporary.rename(directory / annoy_name)
    k = index.neighbours.shape[1]
    table = pa.table(
        {
            "face_id": pa.array(index.face_ids.tolist(), pa.string()),
            "fingerprint": pa.array(index.fingerprints, pa.uint64()),
            "neighbours": pa.FixedSizeListArray.from_arrays(pa.array(index.neighbours.ravel()), k),
            "distances": pa.FixedSizeListArray.from_arrays(pa.array(index.distances.ravel()), k),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomically(directory / faces_name, sink.getvalue().to_pybytes())
    pointer = directory / INDEX_POINTER
    previous = json.loads(pointer.read_text()) if pointer.exists() else None
    document = {"index_file": annoy_name, "faces_file": faces_name, "dims": int(index.annoy.f), **index.info}
    write_atomically(pointer, json.dumps(document, indent=1).encode())
    keep = {annoy_name, faces_name} | ({previous["index_file"], previous["faces_file"]} if previous else set())
    for old in [*directory.glob("index-*.ann"), *directory.glob("faces-*.parquet")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return pointer


def load_index(directory: Path) -> FaceIndex | None:
    """The current build, memory-mapped; None before the first build."""
    pointer = Path(directory) / INDEX_POINTER
    if not pointer.exists():
        return None
    document = json.loads(pointer.read_text())
    annoy = AnnoyIndex(document["dims"], "euclidean")
    annoy.load(str(Path(directory) / document["index_file"]))
    table = pq.read_table(Path(directory) / document["faces_file"])
    k = table.schema.field("neighbours").type.list_size
    rows = table.num_rows
    info = {key: value for key, value in document.items() if key not in {"index_file", "faces_file", "dims"}}
    return FaceIndex(
        annoy,
        np.asarray(table["face_id"].to_pylist(), dtype=object),
        table["fingerprint"].to_numpy(),
        pc.list_flatten(table["neighbours"]).to_numpy().reshape(rows, k).astype(np.int32),
        pc.list_flatten(table["distances"]).to_numpy().reshape(rows, k).astype(np.float32),
        info,
    )


# -- hybrid matching ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeighbourGraph:
    """Undirected candidate edges between face positions (first < second), and how they were found."""

    first: np.ndarray
    second: np.ndarray
    indexed: int  # faces whose neighbours among indexed faces came from the last index build
    fresh: int  # faces embedded since: the index was queried for them, and they were compared among themselves


def _edges(rows: np.ndarray, neighbours: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.repeat(rows, neighbours.shape[1])
    second = neighbours.ravel()
    valid = (second >= 0) & (second != first) & (distances.ravel() ** 2 < NEIGHBOUR_MAX_SQUARED)
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
    return _query_all(index.annoy, vectors, k, by_item=False)


def neighbours_among(vectors: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows (rows, distances): vectorised brute force, or a throwaway Annoy forest
    when the rows are too many for that."""
    if len(vectors) ** 2 <= BRUTE_FORCE_MAX_PAIRS:
        return brute_force_neighbours(vectors, vectors, k, np.arange(len(vectors)), NEIGHBOUR_MAX_SQUARED)
    return _query_all(_new_annoy(vectors, INDEX_TREES), np.arange(len(vectors)), k, by_item=True)


def neighbour_graph(face_ids, vectors: np.ndarray, index: FaceIndex | None, k: int = NEIGHBOURS) -> NeighbourGraph:
    """Each face's k nearest faces, the hybrid way: between faces indexed with their current embedding, the
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
        parts.append(_edges(indexed, position_of_item[recorded], index.distances[item_of[indexed]]))
        if len(fresh):
            items, distances = query_index(index, vectors[fresh], k)
            parts.append(_edges(fresh, position_of_item[items], distances))
    if len(fresh):
        among, distances = neighbours_among(vectors[fresh], k)
        parts.append(_edges(fresh, np.where(among >= 0, fresh[np.maximum(among, 0)], -1), distances))
    first = np.concatenate([part[0] for part in parts]).astype(np.int64) if parts else np.empty(0, np.int64)
    second = np.concatenate([part[1] for part in parts]).astype(np.int64) if parts else np.empty(0, np.int64)
    low, high = np.minimum(first, second), np.maximum(first, second)
    unique = np.unique(low * count + high)
    return NeighbourGraph(unique // count, unique % count, len(indexed), len(fresh))


# -- clustering --------------------------------------------------------------------------------------------------


def _linkage(sums: np.ndarray, sizes: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Mean squared distance over all pairs of two groups of unit vectors: 2 - 2 * (sum_a . sum_b) / (n_a n_b)."""
    result = np.empty(len(first), dtype=np.float64)
    for start in range(0, len(first), LINKAGE_BLOCK):
        a, b = first[start : start + LINKAGE_BLOCK], second[start : start + LINKAGE_BLOCK]
        dots = np.einsum("ij,ij->i", sums[a], sums[b])
        result[start : start + LINKAGE_BLOCK] = 2.0 - 2.0 * dots / (sizes[a] * sizes[b])
    return result


def _best_partners(first: np.ndarray, second: np.ndarray, link: np.ndarray, groups: int) -> np.ndarray:
    """Each group's closest neighbour (-1 if none). Edges come sorted by (first, second), so a stable sort on the
    linkage is a total order: the overall closest pair always choose each other."""
    order = np.argsort(link, kind="stable")
    ends = np.column_stack([first[order], second[order]]).ravel()  # edges closest first, both ends of each
    others = np.column_stack([second[order], first[order]]).ravel()
    closest = np.full(groups, len(ends), dtype=np.int64)
    np.minimum.at(closest, ends, np.arange(len(ends)))
    partner = np.full(groups, -1, dtype=np.int64)
    has = closest < len(ends)
    partner[has] = others[closest[has]]
    return partner


def _sum_by(labels: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Rows of `values` summed per label (a sort and one reduceat: far faster than np.add.at on rows)."""
    order = np.argsort(labels, kind="stable")
    present, starts = np.unique(labels[order], return_index=True)
    result = np.zeros((groups, *values.shape[1:]), dtype=values.dtype)
    if len(order):
        result[present] = np.add.reduceat(values[order], starts, axis=0)
    return result


def _outliers(sums: np.ndarray, sizes: np.ndarray, target: np.ndarray, joining: np.ndarray, threshold: float):
    """Joining groups whose mean squared distance to the rest of their target group would reach the threshold."""
    targets = np.unique(target[joining])
    members = np.flatnonzero(np.isin(target, targets))  # only the groups being formed around joiners
    slot = np.searchsorted(targets, target[members])
    group_sums = _sum_by(slot, sums[members], len(targets))
    group_sizes = np.bincount(slot, weights=sizes[members], minlength=len(targets))
    own = np.searchsorted(targets, target[joining])
    rest_sums = group_sums[own] - sums[joining]
    rest_sizes = group_sizes[own] - sizes[joining]
    dots = np.einsum("ij,ij->i", rest_sums, sums[joining])
    return joining[2.0 - 2.0 * dots / (rest_sizes * sizes[joining]) >= threshold]


def agglomerate(
    vectors: np.ndarray,
    graph: NeighbourGraph,
    threshold: float = LINKAGE_THRESHOLD,
    person_of: np.ndarray | None = None,
    forbidden: dict[int, set[int]] | None = None,
) -> np.ndarray:
    """Average-linkage clustering along the graph's edges; returns a group number per face (its smallest member's
    position). `person_of[i]` >= 0 is the person the user placed face i in: groups of two people never merge.
    `forbidden[i]` are people face i was rejected from: its group never joins a group holding them.

    Rounds, each vectorised: groups that are each other's closest neighbour merge (exact average linkage merges
    such pairs first, in any order). A group whose closest neighbour is such a pair joins it in the same round when
    its mean squared distance to the whole merged group stays below the threshold: without that, a large group
    would absorb its stragglers one per round, and rounds would number in the hundreds."""
    face_group = np.arange(len(vectors))  # faces -> current group; groups are renumbered 0..groups-1 each round
    sums = vectors.astype(np.float64)
    sizes = np.ones(len(vectors))
    person = np.full(len(vectors), -1, np.int64) if person_of is None else person_of.astype(np.int64).copy()
    banned = {face: set(people) for face, people in (forbidden or {}).items()}
    first, second = graph.first.astype(np.int64), graph.second.astype(np.int64)
    link = _linkage(sums, sizes, first, second)
    while True:
        allowed = (link < threshold) & ((person[first] < 0) | (person[second] < 0) | (person[first] == person[second]))
        for edge in (np.flatnonzero(allowed & (np.isin(first, list(banned)) | np.isin(second, list(banned))))
                     if banned else ()):
            a, b = first[edge], second[edge]
            allowed[edge] = person[b] not in banned.get(a, ()) and person[a] not in banned.get(b, ())
        first, second, link = first[allowed], second[allowed], link[allowed]
        if not len(first):
            break
        groups = len(sizes)
        partner = _best_partners(first, second, link, groups)
        has = partner >= 0
        mutual = np.zeros(groups, dtype=bool)
        mutual[has] = partner[partner[has]] == np.flatnonzero(has)
        target = np.arange(groups)
        target[mutual] = np.minimum(target[mutual], partner[mutual])
        # Stragglers: unplaced, unbanned groups whose closest neighbour is half of a merging pair.
        free = person < 0
        if banned:
            free[list(banned)] = False
        joining = np.flatnonzero(has & ~mutual & free)
        joining = joining[mutual[partner[joining]]]
        target[joining] = target[partner[joining]]
        for _ in range(3):  # leaving can change the group for those who stay; a few passes settle it
            leaving = _outliers(sums, sizes, target, joining, threshold)
            if not len(leaving):
                break
            target[leaving] = leaving
            joining = np.setdiff1d(joining, leaving)
        else:
            target[joining] = joining  # not settled: the stragglers wait for the next round
        survivors, renumber = np.unique(target, return_inverse=True)
        movers = np.flatnonzero(target != np.arange(groups))  # only the groups that join another are added in
        merged_person = person[survivors]
        np.maximum.at(merged_person, renumber[movers], person[movers])
        merged_sums = sums[survivors]
        arriving, slot = np.unique(renumber[movers], return_inverse=True)
        merged_sums[arriving] += _sum_by(slot, sums[movers], len(arriving))
        sizes = np.bincount(renumber, weights=sizes, minlength=len(survivors))
        sums, person = merged_sums, merged_person
        merged_banned: dict[int, set[int]] = {}
        for group, people in banned.items():
            merged_banned.setdefault(int(renumber[group]), set()).update(people)
        banned = merged_banned
        grew = np.bincount(renumber, minlength=len(survivors)) > 1
        face_group = renumber[face_group]
        first, second = renumber[first], renumber[second]
        low, high = np.minimum(first, second), np.maximum(first, second)
        distinct = low != high
        unique, where = np.unique(low[distinct] * len(survivors) + high[distinct], return_index=True)
        first, second = unique // len(survivors), unique % len(survivors)
        link = link[distinct][where]
        changed = grew[first] | grew[second]
        link[changed] = _linkage(sums, sizes, first[changed], second[changed])
    smallest = np.full(len(sizes), len(vectors), dtype=np.int64)
    np.minimum.at(smallest, face_group, np.arange(len(vectors)))
    return smallest[face_group]


def attach_leftovers(
    vectors: np.ndarray,
    graph: NeighbourGraph,
    group: np.ndarray,
    person_of: np.ndarray | None = None,
    forbidden: dict[int, set[int]] | None = None,
) -> np.ndarray:
    """Second stage: each leftover group (<= LEFTOVER_MAX_FACES faces, none placed by the user) joins the
    established group it is clearly closest to, among the groups its faces' neighbours belong to."""
    labels, group_of = np.unique(group, return_inverse=True)
    sums = _sum_by(group_of, vectors.astype(np.float64), len(labels))
    sizes = np.bincount(group_of, minlength=len(labels)).astype(np.float64)
    person = np.full(len(labels), -1, np.int64)
    if person_of is not None:
        np.maximum.at(person, group_of, person_of.astype(np.int64))
    small, large = group_of[np.r_[graph.first, graph.second]], group_of[np.r_[graph.second, graph.first]]
    candidate = (sizes[small] <= LEFTOVER_MAX_FACES) & (sizes[large] > LEFTOVER_MAX_FACES) & (person[small] < 0)
    pairs = np.unique(small[candidate] * len(labels) + large[candidate])
    small, large = pairs // len(labels), pairs % len(labels)
    if forbidden:  # a leftover holding a face rejected from the target's person stays apart
        barred = {(int(group_of[face]), person_id) for face, people in forbidden.items() for person_id in people}
        keep = np.array([(a, p) not in barred for a, p in zip(small.tolist(), person[large].tolist())], dtype=bool)
        small, large = small[keep], large[keep]
    if not len(small):
        return group
    link = _linkage(sums, sizes, small, large)
    order = np.lexsort((large, link, small))
    small, large, link = small[order], large[order], link[order]
    heads = np.flatnonzero(np.r_[True, small[1:] != small[:-1]])
    runner_up = np.full(len(heads), np.inf)
    has_second = np.r_[heads[1:], len(small)] - heads > 1
    runner_up[has_second] = link[heads[has_second] + 1]
    joins = (link[heads] < ATTACH_THRESHOLD) & (runner_up - link[heads] >= ATTACH_MARGIN)
    target = np.arange(len(labels))
    target[small[heads[joins]]] = large[heads[joins]]
    return labels[target[group_of]]


# -- people ------------------------------------------------------------------------------------------------------


def unknown_number(seed_text: str, taken: set[str]) -> str:
    """A 6-digit number derived from a group's identity (its smallest face_id), re-drawn while taken."""
    for attempt in range(1000):
        digest = hashlib.sha256(f"{seed_text}#{attempt}".encode()).digest()
        number = str(10 ** (UNKNOWN_DIGITS - 1) + int.from_bytes(digest[:8], "big") % (9 * 10 ** (UNKNOWN_DIGITS - 1)))
        if number not in taken:
            return number
    raise RuntimeError("no free unknown-person number")  # 900,000 numbers: unreachable for a real library


@dataclass(frozen=True)
class PeopleResult:
    faces: pa.Table  # FACE_SCHEMA
    people: pa.Table  # PEOPLE_SCHEMA
    graph: NeighbourGraph


def _previous_members(previous: pa.Table | None) -> dict[str, str]:
    if previous is None or previous.num_rows == 0:
        return {}
    rows = previous.filter(pc.is_valid(previous["person_id"]))
    return dict(zip(rows["face_id"].to_pylist(), rows["person_id"].to_pylist()))


def _person_ids_for_groups(
    group: np.ndarray, face_ids: np.ndarray, seeded_person: np.ndarray, people: list[str],
    previous: dict[str, str], labels: LabelState, taken: set[str],
) -> dict[int, str]:
    """group number -> person_id: the user's person for seeded groups, else the previous run's unnamed group that
    shares most faces with it (each previous id goes to one group), else a new number not in `taken` (which
    grows with each number handed out)."""
    result: dict[int, str] = {}
    seeded = np.flatnonzero(seeded_person >= 0)
    for position in seeded:
        result[int(group[position])] = people[seeded_person[position]]
    claimed = set(result.values())
    overlaps: dict[tuple[int, str], int] = {}
    for position, face_id in enumerate(face_ids.tolist()):
        root = int(group[position])
        if root in result or face_id not in previous:
            continue
        earlier = labels.resolve(previous[face_id])
        if earlier not in claimed:
            overlaps[(root, earlier)] = overlaps.get((root, earlier), 0) + 1
    for (root, earlier), _ in sorted(overlaps.items(), key=lambda item: (-item[1], item[0][1], item[0][0])):
        if root not in result and earlier not in claimed:
            result[root] = earlier
            claimed.add(earlier)
    taken |= claimed
    smallest_face: dict[int, str] = {}
    for position, face_id in enumerate(face_ids.tolist()):
        root = int(group[position])
        if root not in result and (root not in smallest_face or face_id < smallest_face[root]):
            smallest_face[root] = face_id
    for root, face_id in sorted(smallest_face.items(), key=lambda item: item[1]):
        result[root] = unknown_number(face_id, taken)
        taken.add(result[root])
    return result


def cluster_people(
    face_ids,
    photo_ids,
    embeddings: np.ndarray,
    labels: LabelState,
    previous: pa.Table | None = None,
    index: FaceIndex | None = None,
    threshold: float = LINKAGE_THRESHOLD,
) -> PeopleResult:
    """Every face gets a person (except those the user said are not faces). `previous` is the last run's faces
    table, so unnamed groups keep their numbers; `index` the last face index build (None: all brute force)."""
    face_ids = np.asarray(face_ids, dtype=object)
    photo_ids = np.asarray(photo_ids, dtype=object)
    vectors = normalise(np.asarray(embeddings, dtype=np.float32).reshape(len(face_ids), EMBEDDING_DIMS))
    not_faces = np.array([face_id in labels.not_faces for face_id in face_ids.tolist()], dtype=bool)
    keep = np.flatnonzero(~not_faces)
    ids, photos, kept_vectors = face_ids[keep], photo_ids[keep], vectors[keep]

    seeds, bans = labels.seeds(), labels.forbidden()
    people = sorted(set(seeds.values()) | {pid for banned in bans.values() for pid in banned})
    code = {person_id: number for number, person_id in enumerate(people)}
    seeded_person = np.array([code[seeds[f]] if f in seeds else -1 for f in ids.tolist()], dtype=np.int64)
    forbidden = {
        position: {code[pid] for pid in bans[face_id]}
        for position, face_id in enumerate(ids.tolist())
        if face_id in bans
    }
    graph = neighbour_graph(ids, kept_vectors, index)
    group = agglomerate(kept_vectors, graph, threshold, seeded_person, forbidden)
    group = attach_leftovers(kept_vectors, graph, group, seeded_person, forbidden)
    earlier = _previous_members(previous)
    # Numbers never handed to a new group: anyone's from the last run, and any the user's edits mention.
    taken = set(earlier.values()) | set(labels.names) | set(labels.merged_into) | set(people)
    person_of_group = _person_ids_for_groups(group, ids, seeded_person, people, earlier, labels, taken)
    person = np.array([person_of_group[int(root)] for root in group], dtype=object)

    # An unnamed group matched to its previous number may hold a face rejected from that number: the face leaves,
    # for the number it had on its own last time when it can, so that re-runs agree.
    used = set(person_of_group.values())
    for position, face_id in enumerate(ids.tolist()):
        if person[position] in bans.get(face_id, ()):
            own = earlier.get(face_id)
            number = own if own and own not in bans[face_id] and own not in used else unknown_number(face_id, taken)
            person[position] = number
            used.add(number)
            taken.add(number)
    return _tables(ids, photos, kept_vectors, person, seeded_person >= 0, face_ids[not_faces], photo_ids[not_faces],
                   labels, graph)


def _tables(ids, photos, vectors, person, by_user, rejected_ids, rejected_photos, labels, graph) -> PeopleResult:
    people, person_of = np.unique(person.astype(str), return_inverse=True)
    sizes = np.bincount(person_of, minlength=len(people))
    totals = _sum_by(person_of, vectors.astype(np.float64), len(people))
    similarity = np.einsum("ij,ij->i", vectors.astype(np.float64), totals[person_of])  # 1 + sum of cosines to others
    others = sizes[person_of] - 1
    mean_other = np.divide(similarity - 1.0, others, out=np.zeros_like(similarity), where=others > 0)
    distance = np.where(others > 0, np.sqrt(np.maximum(2.0 - 2.0 * mean_other, 0.0)), np.nan).astype(np.float32)
    # Representative: the face closest to all the others (largest summed similarity), ties to the smaller face_id.
    order = np.lexsort((ids.astype(str), -similarity, person_of))
    representative = ids[order[np.searchsorted(person_of[order], np.arange(len(people)))]]
    _, photo_pairs = np.unique(np.char.add(person.astype(str), photos.astype(str)), return_index=True)
    photo_counts = np.bincount(person_of[photo_pairs], minlength=len(people))
    names = [labels.names.get(person_id) for person_id in people.tolist()]
    shown = [name or UNKNOWN_NAME.format(number=person_id) for name, person_id in zip(names, people.tolist())]
    faces = pa.table(
        {
            "face_id": pa.array([*ids.tolist(), *rejected_ids.tolist()], pa.string()),
            "photo_id": pa.array([*photos.tolist(), *rejected_photos.tolist()], pa.string()),
            "person_id": pa.array([*person.tolist(), *[None] * len(rejected_ids)], pa.string()),
            "person_name": pa.array([*(shown[code] for code in person_of.tolist()), *[None] * len(rejected_ids)],
                                    pa.string()),
            "assigned_by": pa.array(
                [ASSIGNED_BY_USER if user else ASSIGNED_BY_AUTO for user in by_user.tolist()]
                + [ASSIGNED_BY_USER] * len(rejected_ids),
                pa.string(),
            ),
            "distance": pa.array(np.r_[distance, np.full(len(rejected_ids), np.nan, np.float32)], pa.float32(),
                                 from_pandas=True),
        },
        schema=FACE_SCHEMA,
    )
    people_table = pa.table(
        {
            "person_id": pa.array(people.tolist(), pa.string()),
            "name": pa.array(shown, pa.string()),
            "named": pa.array([name is not None for name in names], pa.bool_()),
            "faces": pa.array(sizes, pa.int64()),
            "photos": pa.array(photo_counts, pa.int64()),
            "representative_face_id": pa.array(representative.tolist(), pa.string()),
        },
        schema=PEOPLE_SCHEMA,
    )
    people_table = people_table.sort_by([("faces", "descending"), ("person_id", "ascending")])
    return PeopleResult(faces, people_table, graph)


def save_people(result: PeopleResult, data_dir: Path) -> tuple[Path, Path]:
    """Write both tables to their fixed paths, each atomically (faces first: it is what the next run reads)."""
    paths = []
    for table, relative in ((result.faces, FACES_PATH), (result.people, PEOPLE_PATH)):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        write_atomically(Path(data_dir) / relative, sink.getvalue().to_pybytes())
        paths.append(Path(data_dir) / relative)
    return paths[0], paths[1]


def load_previous_faces(data_dir: Path) -> pa.Table | None:
    """The last run's faces table (to keep unknown people's numbers), or None before the first run."""
    path = Path(data_dir) / FACES_PATH
    return pq.read_table(path) if path.exists() else None


# -- measuring ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusteringScore:
    pairwise_precision: float  # of the pairs put together, the share that are one person
    pairwise_recall: float  # of the pairs that are one person, the share put together
    bcubed_precision: float  # per face: the share of its group that is its person, averaged
    bcubed_recall: float  # per face: the share of its person that is in its group, averaged
    groups: int

    @property
    def bcubed_f(self) -> float:
        total = self.bcubed_precision + self.bcubed_recall
        return 2 * self.bcubed_precision * self.bcubed_recall / total if total else 0.0


def score_clustering(truth, predicted) -> ClusteringScore:
    """Pairwise and BCubed precision / recall of a grouping against the true people (any hashable labels)."""
    _, truth_codes = np.unique(np.asarray(truth, dtype=str), return_inverse=True)
    _, group_codes = np.unique(np.asarray(predicted, dtype=str), return_inverse=True)
    both = np.unique(truth_codes * (group_codes.max() + 1) + group_codes, return_counts=True)[1]
    in_group = np.bincount(group_codes)
    in_truth = np.bincount(truth_codes)
    _, joint_of_face = np.unique(truth_codes * (group_codes.max() + 1) + group_codes, return_inverse=True)
    joint = both[joint_of_face].astype(np.float64)

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) // 2).sum())

    together, same_person, correct = pairs(in_group), pairs(in_truth), pairs(both)
    return ClusteringScore(
        pairwise_precision=correct / together if together else 1.0,
        pairwise_recall=correct / same_person if same_person else 1.0,
        bcubed_precision=float(np.mean(joint / in_group[group_codes])),
        bcubed_recall=float(np.mean(joint / in_truth[truth_codes])),
        groups=len(in_group),
    )
