"""How good a grouping of faces is against the true people, as the people benchmarks and tests measure it
and tests only.

Conventions: `truth[i]` is face i's identity when it is labelled (the largest face of its photo), else None (a
background face, still clustered); `person[i]` is its person, or None when it is unsorted — an unsorted face counts
as a person of its own. Scores are over labelled faces; BCubed recall is over the labelled faces whose identity has
two or more of them (a person seen once cannot be recalled).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Quality:
    labelled: int
    repeated_identities: int  # identities with 2+ labelled faces: the clicks a simulated user gets
    pairwise_precision: float  # of the labelled pairs put together, the share that are one person
    pairwise_recall: float
    bcubed_precision: float
    bcubed_recall: float
    persons: int
    mixed: int  # persons whose labelled faces come from MIXED_IDENTITIES or more identities
    largest_faces: int  # faces (labelled or not) of the largest person
    largest_purity: float  # share of its labelled faces from its main identity (nan when none is labelled)
    unsorted: int = 0
    unsorted_labelled: int = 0
    unsorted_by_reason: dict = field(default_factory=dict)
    clicks: int = 0
    accepted: int = 0
    precision_after_clicks: float = float("nan")
    recall_after_clicks: float = float("nan")


# A person mixing this many identities is a false merge a user cannot undo in one edit.
MIXED_IDENTITIES = 3


def _codes(values) -> np.ndarray:
    return np.unique(np.asarray(values, dtype=str), return_inverse=True)[1]


def _with_singletons(person) -> np.ndarray:
    person = np.asarray(person, dtype=object).copy()
    for face in np.flatnonzero([p is None for p in person.tolist()]):
        person[face] = f"__unsorted_{face}"
    return person.astype(str)


def label_scores(truth, person) -> dict:
    """Pairwise and BCubed precision / recall over the labelled faces."""
    truth = np.asarray(truth, dtype=object)
    labelled = np.flatnonzero([t is not None for t in truth.tolist()])
    identity, group = _codes(truth[labelled].astype(str)), _codes(_with_singletons(person)[labelled])
    _, joint_of, joint_counts = np.unique(identity.astype(np.int64) * (group.max() + 1) + group, return_inverse=True,
                                          return_counts=True)
    joint = joint_counts[joint_of].astype(np.float64)
    in_group, in_identity = np.bincount(group), np.bincount(identity)

    def pairs(counts: np.ndarray) -> float:
        counts = counts.astype(np.float64)
        return float((counts * (counts - 1) / 2).sum())

    together, same, correct = pairs(in_group), pairs(in_identity), pairs(joint_counts)
    repeated = in_identity[identity] >= 2
    return {
        "labelled": len(labelled),
        "repeated_identities": int((in_identity >= 2).sum()),
        "pairwise_precision": correct / together if together else 1.0,
        "pairwise_recall": correct / same if same else 1.0,
        "bcubed_precision": float(np.mean(joint / in_group[group])),
        "bcubed_recall": float(np.mean((joint / in_identity[identity])[repeated])) if repeated.any() else 1.0,
    }


def _composition(truth, person) -> dict:
    """person -> {"faces": count, "identities": {identity: labelled faces}} (unsorted faces left out)."""
    found: dict = {}
    for who, identity in zip(np.asarray(person, dtype=object).tolist(), np.asarray(truth, dtype=object).tolist()):
        if who is None:
            continue
        entry = found.setdefault(who, {"faces": 0, "identities": {}})
        entry["faces"] += 1
        if identity is not None:
            entry["identities"][identity] = entry["identities"].get(identity, 0) + 1
    return found


def _main_identity(identities: dict) -> tuple[object, float]:
    if not identities:
        return None, float("nan")
    best = max(sorted(identities), key=lambda identity: identities[identity])
    return best, identities[best] / sum(identities.values())


def simulate_clicks(truth, person, photo_ids, suggestions: Iterable[tuple[str, str]], clicks: int):
    """A user works down the suggestions in rank order, one click each: "yes" when both persons' labelled faces
    are mostly (over half) one and the same identity, "no" otherwise. A suggestion joining what an earlier "yes"
    already joined, or two persons sharing a photo, is not shown. Returns (persons after the merges, clicks used,
    yes clicks)."""
    person = np.asarray(person, dtype=object)
    composition = _composition(truth, person)
    parent = {who: who for who in composition}

    def root(who):
        while parent[who] != who:
            parent[who] = parent[parent[who]]
            who = parent[who]
        return who

    identities = {who: dict(entry["identities"]) for who, entry in composition.items()}
    photos: dict = {}
    for who, photo in zip(person.tolist(), np.asarray(photo_ids, dtype=object).tolist()):
        if who is not None:
            photos.setdefault(who, set()).add(photo)
    used = accepted = 0
    for first, second in suggestions:
        if used >= clicks:
            break
        if first not in parent or second not in parent:
            continue
        first, second = root(first), root(second)
        if first == second or photos[first] & photos[second]:
            continue
        used += 1
        main_first, share_first = _main_identity(identities[first])
        main_second, share_second = _main_identity(identities[second])
        if main_first is not None and main_first == main_second and share_first > 0.5 and share_second > 0.5:
            accepted += 1
            parent[second] = first
            for identity, count in identities.pop(second).items():
                identities[first][identity] = identities[first].get(identity, 0) + count
            photos[first] |= photos.pop(second)
    merged = np.array([None if who is None else root(who) for who in person.tolist()], dtype=object)
    return merged, used, accepted


def quality(truth, person, photo_ids=None, reasons=None, suggestions=None) -> Quality:
    """Every figure issue 10 asks for; with `suggestions` (person pairs, best first), also after as many simulated
    clicks as there are identities seen more than once."""
    truth, person = np.asarray(truth, dtype=object), np.asarray(person, dtype=object)
    scores = label_scores(truth, person)
    composition = _composition(truth, person)
    largest = max(sorted(composition), key=lambda who: composition[who]["faces"]) if composition else None
    unsorted = np.array([who is None for who in person.tolist()], bool)
    labelled = np.array([identity is not None for identity in truth.tolist()], bool)
    result = Quality(
        labelled=scores["labelled"],
        repeated_identities=scores["repeated_identities"],
        pairwise_precision=scores["pairwise_precision"],
        pairwise_recall=scores["pairwise_recall"],
        bcubed_precision=scores["bcubed_precision"],
        bcubed_recall=scores["bcubed_recall"],
        persons=len(composition),
        mixed=sum(len(entry["identities"]) >= MIXED_IDENTITIES for entry in composition.values()),
        largest_faces=composition[largest]["faces"] if largest else 0,
        largest_purity=_main_identity(composition[largest]["identities"])[1] if largest else float("nan"),
        unsorted=int(unsorted.sum()),
        unsorted_labelled=int((unsorted & labelled).sum()),
    )
    if reasons is not None:
        reasons = np.asarray(reasons, dtype=object)
        for reason in sorted({r for r in reasons.tolist() if r is not None}):
            chosen = reasons == reason
            result.unsorted_by_reason[reason] = (int(chosen.sum()), int((chosen & labelled).sum()))
    if suggestions is not None:
        merged, result.clicks, result.accepted = simulate_clicks(truth, person, photo_ids, suggestions,
                                                                 scores["repeated_identities"])
        after = label_scores(truth, merged)
        result.precision_after_clicks = after["pairwise_precision"]
        result.recall_after_clicks = after["bcubed_recall"]
    return result


HEADER = (f"{'method':<44} {'P':>6} {'R':>6} {'mixed':>5} {'persons':>7} {'largest':>7} {'purity':>6} "
          f"{'unsorted':>8} {'clicks':>6} {'P after':>7} {'R after':>7}")


def row(label: str, result: Quality) -> str:
    return (f"{label:<44} {result.pairwise_precision:6.3f} {result.bcubed_recall:6.3f} {result.mixed:5d} "
            f"{result.persons:7d} {result.largest_faces:7d} {result.largest_purity:6.2f} {result.unsorted:8d} "
            f"{result.clicks:6d} {result.precision_after_clicks:7.3f} {result.recall_after_clicks:7.3f}")
