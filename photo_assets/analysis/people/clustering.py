"""How faces become groups: cautious on purpose — a user merges two groups with one click, while splitting a group
that holds two people is the edit they cannot make (docs/analysis.md, People).

1. Refinement: each face's unit vector moves towards its close neighbourhood,
   v' = normalise(v + sum_j max(0, 1 - d2_j / refine_radius) v_j) over its REFINE_NEIGHBOURS nearest faces of *other*
   photos (one step of neighbour averaging, like query expansion): two faces of one person that are each other's
   neighbours' neighbours come close. On the LFW training set (lfw_train) it lifts BCubed recall at pairwise precision
   >= 0.98 from 0.538 to 0.637. The neighbour table's candidates are then re-measured with v' (no second index).
2. Founding: exact average linkage (the mean squared distance over all pairs of two groups, from the groups' vector
   sums) along the table's edges, merging in rounds of reciprocal nearest pairs (valid for average linkage, which is
   reducible), below the linkage threshold. Two groups holding faces of one photo (cannot-link: two faces in one photo
   are two people), seeds of two different people, or a face the user rejected from a person and that person's
   faces never merge.
3. Claims: a named person takes an unsorted face when it is very close to that person's faces.
4. Names find their faces: a named person takes a face of an unknown group when it is close to a face the user
   confirmed for that person, and clearly closer than to any other named person's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photo_assets.analysis.people.neighbours import NeighbourTable
from photo_assets.analysis.people.thresholds import Thresholds
from photo_assets.analysis.people.vectors import normalise, sum_by

# Refinement over 5 neighbours (the radius is the descriptor's: thresholds.py). lfw_train with FaceNet, best BCubed
# recall at precision >= 0.98 with no person of 3 identities: 3 / 5 / 8 / 10 neighbours 0.555 / 0.637 / 0.596 / 0.59.
REFINE_NEIGHBOURS = 5
# A straggler joins a merging pair in the same round only when its mean squared distance to the new group stays
# below threshold x this: at 100k generated faces rounds fall from 506 to 66 (26.6 s -> 7.0 s), and lfw_train's
# result equals the exact (no-straggler) run's; at 1.0 precision drops to 0.982.
STRAGGLER_FACTOR = 0.85
# Rows per block when gathering neighbour vectors (4096 x 20 x 128 x 4 bytes = 42 MB); pairs per block of linkage.
BLOCK_ROWS = 4096
LINKAGE_BLOCK = 65536


@dataclass(frozen=True)
class Refined:
    """Refined unit vectors and the neighbour table re-measured with them, nearest first."""

    vectors: np.ndarray  # (faces, 128) float32
    rows: np.ndarray  # (faces, k) int64, -1 where fewer
    squared: np.ndarray  # (faces, k) float32, inf where fewer


def refine(vectors: np.ndarray, photo_codes: np.ndarray, table: NeighbourTable, radius: float) -> Refined:
    """One step of neighbour averaging over each face's nearest faces of other photos; the table re-measured."""
    refined = np.empty_like(vectors, dtype=np.float32)
    for start in range(0, len(vectors), BLOCK_ROWS):  # blocks bound the gathered (rows, k, 128) neighbour vectors
        rows = table.rows[start : start + BLOCK_ROWS, :REFINE_NEIGHBOURS]
        squared = table.squared[start : start + BLOCK_ROWS, :REFINE_NEIGHBOURS]
        valid, safe = rows >= 0, np.maximum(rows, 0)
        other_photo = photo_codes[safe] != photo_codes[start : start + len(rows), None]
        weight = (np.maximum(1.0 - squared / radius, 0.0) * valid * other_photo).astype(np.float32)
        refined[start : start + len(rows)] = vectors[start : start + len(rows)] + np.einsum(
            "ij,ijd->id", weight, vectors[safe]
        )
    refined = normalise(refined)
    rows_out = np.empty_like(table.rows)
    squared_out = np.empty(table.rows.shape, np.float32)
    for start in range(0, len(vectors), BLOCK_ROWS):
        rows = table.rows[start : start + BLOCK_ROWS]
        valid, safe = rows >= 0, np.maximum(rows, 0)
        dots = np.einsum("id,ijd->ij", refined[start : start + len(rows)], refined[safe])
        squared = np.where(valid, np.maximum(2.0 - 2.0 * dots, 0.0), np.inf).astype(np.float32)
        order = np.argsort(squared, axis=1, kind="stable")
        rows_out[start : start + len(rows)] = np.take_along_axis(rows, order, 1)
        squared_out[start : start + len(rows)] = np.take_along_axis(squared, order, 1)
    return Refined(refined, rows_out, squared_out)


def table_edges(rows: np.ndarray, squared: np.ndarray, below: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected distinct edges (first < second) of a neighbour table, with their squared distances below `below`."""
    count = len(rows)
    first = np.repeat(np.arange(count), rows.shape[1])
    second, distance = rows.ravel(), squared.ravel()
    valid = (second >= 0) & (distance < below)
    first, second, distance = first[valid], second[valid], distance[valid]
    low, high = np.minimum(first, second), np.maximum(first, second)
    key, where = np.unique(low * count + high, return_index=True)
    return key // count, key % count, distance[where]


def same_photo_pairs(photo_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of faces of one photo (m(m-1)/2 for a photo of m faces): the cannot-link constraints."""
    order = np.argsort(photo_codes, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(photo_codes[order])) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    first, second = [], []
    for faces in np.unique(counts[counts > 1]):
        photo_starts = starts[counts == faces]
        i, j = np.triu_indices(faces, 1)
        first.append(order[(photo_starts[:, None] + i).ravel()])
        second.append(order[(photo_starts[:, None] + j).ravel()])
    if not first:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(first), np.concatenate(second)


def _linkage(sums: np.ndarray, sizes: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Mean squared distance over all pairs of two groups of unit vectors: 2 - 2 * (sum_a . sum_b) / (n_a n_b)."""
    result = np.empty(len(first), np.float64)
    for start in range(0, len(first), LINKAGE_BLOCK):
        a, b = first[start : start + LINKAGE_BLOCK], second[start : start + LINKAGE_BLOCK]
        result[start : start + len(a)] = 2.0 - 2.0 * np.einsum("ij,ij->i", sums[a], sums[b]) / (sizes[a] * sizes[b])
    return result


def _closest_partners(first: np.ndarray, second: np.ndarray, link: np.ndarray, groups: int) -> np.ndarray:
    """Each group's closest neighbour along the edges (-1 if none); ties go to the edge listed first."""
    order = np.argsort(link, kind="stable")
    ends = np.r_[first[order], second[order]]
    others = np.r_[second[order], first[order]]
    position = np.r_[np.arange(len(order)), np.arange(len(order))]
    closest = np.full(groups, len(order), np.int64)
    np.minimum.at(closest, ends, position)
    best_end = np.full(groups, -1, np.int64)
    np.maximum.at(best_end, ends, np.where(position == closest[ends], np.arange(len(ends)), -1))
    partner = np.full(groups, -1, np.int64)
    has = best_end >= 0
    partner[has] = others[best_end[has]]
    return partner


def _outliers(sums, sizes, target, joining, threshold: float) -> np.ndarray:
    """Joining groups whose mean squared distance to the rest of their new group would reach the threshold."""
    if not len(joining):
        return joining
    targets = np.unique(target[joining])
    members = np.flatnonzero(np.isin(target, targets))
    slot = np.searchsorted(targets, target[members])
    group_sums = sum_by(slot, sums[members], len(targets))
    group_sizes = np.bincount(slot, weights=sizes[members], minlength=len(targets))
    own = np.searchsorted(targets, target[joining])
    rest_sums, rest_sizes = group_sums[own] - sums[joining], group_sizes[own] - sizes[joining]
    dots = np.einsum("ij,ij->i", rest_sums, sums[joining])
    return joining[2.0 - 2.0 * dots / (rest_sizes * sizes[joining]) >= threshold]


class _Merger:
    """Average linkage along graph edges with cannot-link, one round at a time. Group ids are stable: a group is
    named by a face position and never renumbered, so each round costs O(edges + faces)."""

    def __init__(self, vectors, first, second, link, threshold, person, cannot_first, cannot_second):
        count = len(vectors)
        self.count, self.threshold = count, threshold
        self.face_group = np.arange(count)
        self.sums = vectors.astype(np.float32).copy()  # float32 sums: half the memory traffic, ample for a threshold
        self.sizes = np.ones(count)
        self.person = person.astype(np.int64).copy()
        keep = link < threshold  # edges at or above the threshold never merge directly
        self.first, self.second, self.link = first[keep], second[keep], link[keep]
        self.cannot_first, self.cannot_second = cannot_first, cannot_second

    def _allowed_edges(self) -> bool:
        person = self.person
        ok = (self.link < self.threshold) & (
            (person[self.first] < 0) | (person[self.second] < 0) | (person[self.first] == person[self.second])
        )
        self.first, self.second, self.link = self.first[ok], self.second[ok], self.link[ok]
        return bool(len(self.first))

    def _plan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(target per group, pair movers, stragglers, partner): reciprocal nearest pairs merge (the larger id into
        the smaller); a free group whose closest neighbour is half of a pair joins it if it stays close enough."""
        identity = np.arange(self.count)
        partner = _closest_partners(self.first, self.second, self.link, self.count)
        has = np.flatnonzero(partner >= 0)
        mutual = np.zeros(self.count, bool)
        mutual[has[partner[partner[has]] == has]] = True
        target = identity.copy()
        pair_movers = np.flatnonzero(mutual & (partner < identity))
        target[pair_movers] = partner[pair_movers]
        stragglers = has[~mutual[has] & mutual[np.maximum(partner[has], 0)] & (self.person[has] < 0)]
        target[stragglers] = target[partner[stragglers]]
        for _ in range(3):  # leaving can change the group for those who stay; a few passes settle it
            leaving = _outliers(self.sums, self.sizes, target, stragglers, self.threshold * STRAGGLER_FACTOR)
            if not len(leaving):
                break
            target[leaving] = leaving
            stragglers = np.setdiff1d(stragglers, leaving)
        else:  # not settled: the stragglers wait for the next round
            target[stragglers] = stragglers
            stragglers = stragglers[:0]
        return target, pair_movers, stragglers, partner

    def _clashes(self, target: np.ndarray) -> np.ndarray:
        """Groups a planned merge would put together with a face they cannot be with."""
        first, second = self.face_group[self.cannot_first], self.face_group[self.cannot_second]
        clash = target[first] == target[second]
        return np.unique(np.r_[first[clash], second[clash]])

    def _resolve_clashes(self, target, pair_movers, stragglers, partner) -> np.ndarray:
        """Cancel what would join two faces that cannot be together: the stragglers first, then the pair (its edge
        is dropped for good: a pair that clashes now always will)."""
        for _ in range(2):
            involved = self._clashes(target)
            if not len(involved):
                return target
            waiting = np.intersect1d(involved, stragglers)
            if len(waiting):
                target[waiting] = waiting
                stragglers = np.setdiff1d(stragglers, waiting)
                continue
            cancelled = np.intersect1d(np.r_[involved, partner[involved]], pair_movers)
            low, high = np.minimum(cancelled, partner[cancelled]), np.maximum(cancelled, partner[cancelled])
            edge_keys = np.minimum(self.first, self.second) * self.count + np.maximum(self.first, self.second)
            dropped = np.isin(edge_keys, low * self.count + high)
            self.first, self.second, self.link = self.first[~dropped], self.second[~dropped], self.link[~dropped]
            broken = np.zeros(self.count, bool)
            broken[np.r_[low, high]] = True
            heading = stragglers[broken[partner[stragglers]]]
            target[heading] = heading
            stragglers = np.setdiff1d(stragglers, heading)
            target[cancelled] = cancelled
            pair_movers = np.setdiff1d(pair_movers, cancelled)
        if len(self._clashes(target)):  # not settled: only the pairs merge this round
            target[stragglers] = stragglers
        return target

    def _apply(self, target: np.ndarray) -> None:
        movers = np.flatnonzero(target != np.arange(self.count))
        if not len(movers):
            return
        destination = target[movers]
        np.add.at(self.sums, destination, self.sums[movers])
        np.add.at(self.sizes, destination, self.sizes[movers])
        np.maximum.at(self.person, destination, self.person[movers])
        self.face_group = target[self.face_group]
        first, second = target[self.first], target[self.second]
        low, high = np.minimum(first, second), np.maximum(first, second)
        distinct = low != high
        key, where = np.unique(low[distinct] * self.count + high[distinct], return_index=True)
        self.first, self.second = key // self.count, key % self.count
        self.link = self.link[distinct][where]
        grew = np.zeros(self.count, bool)
        grew[destination] = True
        changed = grew[self.first] | grew[self.second]
        self.link[changed] = _linkage(self.sums, self.sizes, self.first[changed], self.second[changed])

    def run(self) -> np.ndarray:
        while self._allowed_edges():
            target, pair_movers, stragglers, partner = self._plan()
            if len(self.cannot_first):
                target = self._resolve_clashes(target, pair_movers, stragglers, partner)
            self._apply(target)
        smallest = np.full(self.count, self.count, np.int64)
        np.minimum.at(smallest, self.face_group, np.arange(self.count))
        return smallest[self.face_group]


def found_groups(
    refined: Refined,
    photo_codes: np.ndarray,
    person: np.ndarray,
    cannot_link: np.ndarray | None,
    threshold: float,
) -> np.ndarray:
    """A group per face (the position of its first face). `person[i]` >= 0: the person the user placed face i in
    (groups of two people never merge); `cannot_link`: (pairs, 2) positions that must end in different groups, on
    top of faces of one photo."""
    first, second, link = table_edges(refined.rows, refined.squared, threshold)
    cannot_first, cannot_second = same_photo_pairs(photo_codes)
    if cannot_link is not None and len(cannot_link):
        cannot_first, cannot_second = np.r_[cannot_first, cannot_link[:, 0]], np.r_[cannot_second, cannot_link[:, 1]]
    across = photo_codes[first] != photo_codes[second]
    merger = _Merger(refined.vectors, first[across], second[across], link[across].astype(np.float64), threshold,
                     person, cannot_first, cannot_second)
    return merger.run()


def claim_unsorted(
    group: np.ndarray, vectors: np.ndarray, named_groups: np.ndarray, unsorted: np.ndarray, thresholds: Thresholds
) -> np.ndarray:
    """`group` with the unsorted faces (positions `unsorted`, group -1) a named group claims: its nearest face of that
    group within `thresholds.claim` (squared, unit vectors) and `claim_margin` nearer than any other group's face."""
    group = group.copy()
    placed = np.flatnonzero(group >= 0)
    if not len(unsorted) or not len(placed) or not len(named_groups):
        return group
    best_group, best, runner_up = nearest_groups(vectors, unsorted, placed, group[placed])
    claimed = (np.isin(best_group, named_groups) & (best < thresholds.claim)
               & (runner_up - best >= thresholds.claim_margin))
    group[unsorted[claimed]] = best_group[claimed]
    return group


def nearest_groups(
    vectors: np.ndarray, candidates: np.ndarray, members: np.ndarray, member_groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate face: the group (of `member_groups`, one per face of `members`) holding its nearest member,
    that squared distance, and its nearest distance to any other group's members (inf when there is none)."""
    order = np.argsort(member_groups, kind="stable")  # each group's members side by side
    members, member_groups = members[order], member_groups[order]
    groups, starts = np.unique(member_groups, return_index=True)
    best_group = np.full(len(candidates), -1, np.int64)
    best, runner_up = np.full(len(candidates), np.inf), np.full(len(candidates), np.inf)
    if not len(candidates) or not len(members):
        return best_group, best, runner_up
    per_block = max(1, 16_000_000 // len(members))  # bounds a block's distances to 64 MB
    for start in range(0, len(candidates), per_block):
        block = candidates[start : start + per_block]
        squared = np.maximum(2.0 - 2.0 * vectors[block] @ vectors[members].T, 0.0)
        per_group = np.minimum.reduceat(squared, starts, axis=1)
        rows, chunk = np.arange(len(block)), slice(start, start + len(block))
        nearest = np.argmin(per_group, axis=1)
        best_group[chunk], best[chunk] = groups[nearest], per_group[rows, nearest]
        if len(groups) > 1:
            per_group[rows, nearest] = np.inf
            runner_up[chunk] = per_group.min(axis=1)
    return best_group, best, runner_up
