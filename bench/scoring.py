"""How good a grouping of faces is against the true people: used by the people benchmarks and tests only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
