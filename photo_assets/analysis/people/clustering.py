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
5. The user's edits (photo_assets.analysis.labels): faces the user placed seed their person, groups holding seeds of two
   different people never merge, a face rejected from a person never joins it, and a group holding a person's seeds
   is that person. Unnamed groups are "Unknown person NNNNNN" and keep their number when they grow or are recomputed
   (matched to the previous run's groups by shared faces); a new number is derived from the group's faces, so a
   recomputation from scratch gives the same numbers.
"""

from __future__ import annotations

import numpy as np

from photo_assets.analysis.people.neighbours import NeighbourGraph
from photo_assets.analysis.people.vectors import sum_by

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
# Pairs whose linkage is computed at once: bounds the gathered rows (2 x pairs x 128 x 8 bytes = 34 MB).
LINKAGE_BLOCK = 16384


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


def _outliers(sums: np.ndarray, sizes: np.ndarray, target: np.ndarray, joining: np.ndarray, threshold: float):
    """Joining groups whose mean squared distance to the rest of their target group would reach the threshold."""
    targets = np.unique(target[joining])
    members = np.flatnonzero(np.isin(target, targets))  # only the groups being formed around joiners
    slot = np.searchsorted(targets, target[members])
    group_sums = sum_by(slot, sums[members], len(targets))
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
        merged_sums[arriving] += sum_by(slot, sums[movers], len(arriving))
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
    sums = sum_by(group_of, vectors.astype(np.float64), len(labels))
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
