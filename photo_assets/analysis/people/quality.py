"""The quality gate: faces too small, blurred, in profile or unsure to be recognised never found a person and never
join an unknown one. They stay *unsorted*, with the reason, for the user to see and assign (docs/analysis.md, People).

Measured with FaceNet-128 on the LFW training set (lfw_train) through `photo-assets run` (2,536 faces of 2,170 photos:
the largest face of each photo labelled, 366 background faces): the gate keeps out 256 faces, 16 of them labelled
(0.7%), and costs no recall (BCubed R 0.618 without it, 0.620 with it: junk faces otherwise soak up neighbours).
Without it the largest "person" of the library is a pile of background faces of dozens of strangers. With dlib's
ResNet there is no "unsure" test (thresholds.py) and the rest keeps out 175 faces, 2 of them labelled.
"""

from __future__ import annotations

import numpy as np

from photo_assets.analysis.people.thresholds import Thresholds

# Reasons, in the order they are given when several tests fail.
TOO_SMALL, BLURRED, PROFILE, UNSURE = "too_small", "blurred", "profile", "unsure"
REASONS = (TOO_SMALL, BLURRED, PROFILE, UNSURE)
# Shorter box side in original pixels: labelled faces' 5th percentile is 79 px, background faces' median 51. Below
# 40 px: 109 faces, none labelled.
MIN_FACE_PIXELS = 40
# Laplacian variance of the aligned 160 x 160 face: labelled 5th percentile 18, background median 10.7. Below 5: 62
# more faces, 1 labelled.
MIN_SHARPNESS = 5.0
# Eye distance over box width: a frontal face is 0.4-0.5; only true profiles fall below 0.25 (4 more, 1 labelled).
MIN_EYE_RATIO = 0.25
# Persons this small say too little about their spread or their faces' quality to be judged.
MIN_JUDGED_FACES = 3


def quality_gate(
    width: np.ndarray,
    height: np.ndarray,
    eye_ratio: np.ndarray,
    sharpness: np.ndarray,
    raw_embeddings: np.ndarray,
    min_raw_norm: float,
) -> np.ndarray:
    """The reason each face is kept out of people (one of REASONS), or None for a face that may found or join one.
    Boxes in original (oriented) pixels; `raw_embeddings` as the descriptor returns them, before normalisation."""
    size = np.minimum(np.asarray(width, np.float64), np.asarray(height, np.float64))
    norm = np.linalg.norm(np.asarray(raw_embeddings, np.float64).reshape(len(size), -1), axis=1)
    reason = np.full(len(size), None, dtype=object)
    # Later tests overwrite earlier ones, so the first of REASONS that fails is the one given.
    for name, failed in (
        (UNSURE, norm < min_raw_norm),
        (PROFILE, np.asarray(eye_ratio, np.float64) < MIN_EYE_RATIO),
        (BLURRED, np.asarray(sharpness, np.float64) < MIN_SHARPNESS),
        (TOO_SMALL, size < MIN_FACE_PIXELS),
    ):
        reason[failed] = name
    return reason


def implausible_persons(
    person_ids: np.ndarray, distances: np.ndarray, raw_norms: np.ndarray, thresholds: Thresholds
) -> dict[str, str]:
    """Persons (3+ faces) that look like no real person, and why: faces mostly too unsure to recognise (the junk
    person of background faces: the previous method's largest lfw_train "person" had 194 of them, median norm under
    the descriptor's min_raw_norm) or faces spread wider than real people's (its max_person_spread)."""
    found: dict[str, str] = {}
    people, person_of = np.unique(np.asarray(person_ids, dtype=str), return_inverse=True)
    order = np.argsort(person_of, kind="stable")
    starts = np.searchsorted(person_of[order], np.arange(len(people) + 1))  # each person's faces, in one pass
    for code in np.flatnonzero(np.diff(starts) >= MIN_JUDGED_FACES):
        person_id, members = str(people[code]), order[starts[code] : starts[code + 1]]
        norm, spread = float(np.median(raw_norms[members])), float(np.nanmean(distances[members]))
        if norm < thresholds.min_raw_norm:
            found[person_id] = (f"faces too unsure to recognise (median embedding norm {norm:.1f} < "
                                f"{thresholds.min_raw_norm})")
        elif spread > thresholds.max_person_spread:
            found[person_id] = f"faces spread too wide (mean distance {spread:.2f} > {thresholds.max_person_spread})"
    return found
