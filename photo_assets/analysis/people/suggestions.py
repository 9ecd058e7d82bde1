"""Merge suggestions: "same person?" pairs, ranked so that the user's clicks go where they pay (docs/analysis.md,
People).

Candidates are the neighbour table's edges between two groups. A pair is scored by its closest pair of faces: their
refined squared distance divided by sqrt(scale_a * scale_b), a face's scale being its squared distance to its
SCALE_NEIGHBOUR-th neighbour — a density-normalised, rank-order-like distance: where faces crowd, a pair must be
relatively closer. Measured on lfw_train as a user works down the list (one click per suggestion, 300 clicks):
BCubed recall after the clicks 0.783 ranking by centroid distance, 0.732 by average linkage, 0.802 by the closest
refined pair, 0.821 with this scaling (8th / 10th / 15th neighbour: 0.815 / 0.820 / 0.818).

Names first: "is this Alice?" (a pair with a named person) is asked before any pair of two unknown people when its
score is below NAMED_FIRST_SCORE: a user who named someone wants that person's faces found, and such pairs are far
more often right at the same score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photo_assets.analysis.people.clustering import Refined, table_edges

# The neighbour whose distance is a face's scale.
SCALE_NEIGHBOUR = 10
# Every table edge is a candidate: squared distances of unit vectors are at most 4.
ANY_DISTANCE = 4.0 + 1e-6
# A face with no neighbours this far has the largest scale a pair of orthogonal faces has.
MISSING_SCALE = 2.0
# lfw_train, every identity named on the first half of its photos, then the rest added (bench/people_thresholds.py's
# naming protocol), share of "yes" by score: pairs with a named person 0.93 below 0.3, 0.43 from 0.3 to 0.5, 0.17
# from 0.5 to 0.7; pairs of two unknown people 0.83 below 0.2, 0.24 from 0.2 to 0.3, 0.09 from 0.3 to 0.5.
NAMED_FIRST_SCORE = 0.5
# Suggestions kept, best first: far more than a user clicks through (lfw_train's 300 clicks end before rank 400), few
# enough that a 300k-face library's list stays a few MB instead of millions of rows.
MAX_SUGGESTIONS = 20_000


@dataclass(frozen=True)
class Suggestions:
    """Ranked pairs of groups, as arrays: `group` < `other_group`, `rank` 1 = ask first."""

    group: np.ndarray
    other_group: np.ndarray
    distance: np.ndarray  # the ranking score: lower = more likely the same person
    rank: np.ndarray
    face: np.ndarray  # positions of the closest pair of faces, the evidence shown
    other_face: np.ndarray
    closest: np.ndarray  # that pair's refined squared distance


def _groups_sharing_a_photo(photo_codes: np.ndarray, group_codes: np.ndarray, groups: int) -> np.ndarray:
    """Keys (a * groups + b, a < b) of group pairs holding faces of one photo: cannot-link forbids them."""
    photo_group = np.unique(photo_codes.astype(np.int64) * groups + group_codes)
    photo, group = photo_group // groups, photo_group % groups
    starts = np.r_[0, np.flatnonzero(np.diff(photo)) + 1]
    counts = np.diff(np.r_[starts, len(photo_group)])
    keys = []
    for members in np.unique(counts[counts > 1]):  # photos holding this many groups: all their pairs at once
        groups_of = group[starts[counts == members][:, None] + np.arange(members)]
        i, j = np.triu_indices(members, 1)
        low, high = np.minimum(groups_of[:, i], groups_of[:, j]), np.maximum(groups_of[:, i], groups_of[:, j])
        keys.append(low.ravel() * groups + high.ravel())
    return np.unique(np.concatenate(keys)) if keys else np.empty(0, np.int64)


def suggest(
    refined: Refined,
    photo_codes: np.ndarray,
    group: np.ndarray,
    forbidden_pairs: np.ndarray,
    named_groups: np.ndarray,
) -> Suggestions:
    """Ranked pairs among the groups of `group` (a group per face; -1: unsorted, never suggested). Never a pair that
    shares a photo, one of `forbidden_pairs` ((pairs, 2) group ids the user said are not the same) or two named
    groups (the user names people they know apart)."""
    scale = refined.squared[:, min(SCALE_NEIGHBOUR, refined.squared.shape[1]) - 1]
    scale = np.where(np.isfinite(scale), np.maximum(scale, 1e-3), MISSING_SCALE)
    first, second, squared = table_edges(refined.rows, refined.squared, ANY_DISTANCE)
    placed = (group[first] >= 0) & (group[second] >= 0) & (group[first] != group[second])
    first, second, squared = first[placed], second[placed], squared[placed]
    groups, codes = np.unique(group[group >= 0], return_inverse=True)
    code_of = np.full(len(group), -1, np.int64)
    code_of[group >= 0] = codes
    code_first, code_second = code_of[first], code_of[second]
    swap = code_first > code_second
    first, second = np.where(swap, second, first), np.where(swap, first, second)
    low, high = np.minimum(code_first, code_second), np.maximum(code_first, code_second)
    score = squared / np.sqrt(scale[first] * scale[second])
    key = low * len(groups) + high
    order = np.lexsort((score, key))  # per pair of groups, its closest (best-scored) pair of faces first
    key, first, second, squared, score = key[order], first[order], second[order], squared[order], score[order]
    head = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    key, first, second, squared, score = key[head], first[head], second[head], squared[head], score[head]
    allowed = ~np.isin(key, _groups_sharing_a_photo(photo_codes[group >= 0], codes, len(groups)))
    if len(forbidden_pairs):
        known = np.isin(forbidden_pairs, groups).all(axis=1)
        pairs = np.searchsorted(groups, forbidden_pairs[known])
        allowed &= ~np.isin(key, pairs.min(axis=1) * len(groups) + pairs.max(axis=1))
    is_named = np.isin(groups, named_groups)
    allowed &= ~(is_named[key // len(groups)] & is_named[key % len(groups)])
    key, first, second, squared, score = key[allowed], first[allowed], second[allowed], squared[allowed], score[allowed]
    named_first = (is_named[key // len(groups)] | is_named[key % len(groups)]) & (score < NAMED_FIRST_SCORE)
    order = np.lexsort((key, score, ~named_first))[:MAX_SUGGESTIONS]
    return Suggestions(
        group=groups[key[order] // len(groups)],
        other_group=groups[key[order] % len(groups)],
        distance=score[order],
        rank=np.arange(1, len(order) + 1),
        face=first[order],
        other_face=second[order],
        closest=squared[order],
    )
