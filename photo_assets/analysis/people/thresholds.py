"""The distances that decide people, per descriptor: each network spreads faces differently (dlib's ResNet keeps
every face within a narrow cone, FaceNet-128 spreads them over the sphere), so every threshold is measured for each
one on lfw_train (300 people with 3-8 photos, 800 strangers seen once, every background face clustered too) and
checked on lfw_dev and deepface (docs/analysis.md, People; bench/people_quality.py). Distances are squared
Euclidean distances between unit vectors (2 - 2 cos), "refined" ones after clustering's neighbour averaging.
"""

from __future__ import annotations

from dataclasses import dataclass

from photo_assets.analysis.descriptors import Descriptor, descriptor_of


@dataclass(frozen=True)
class Thresholds:
    # Refinement: a neighbour of squared distance d2 adds weight max(0, 1 - d2 / refine_radius).
    refine_radius: float
    # Founding: two groups merge while their mean refined squared distance is below this.
    linkage: float
    # A named person claims an unsorted face within this squared distance of its nearest face of the person, and at
    # least `claim_margin` nearer than any other person's.
    claim: float
    claim_margin: float
    # Names find their faces: a face of an unknown group joins a named person when its nearest face the user
    # confirmed for that person is within this refined squared distance and at least `name_margin` nearer than
    # any other named person's.
    name_radius: float
    name_margin: float
    # The quality gate's "unsure": a face whose raw descriptor is shorter than this has no identity in it.
    min_raw_norm: float
    # A person whose faces' mean distance (root of the squared, to the person's other faces) exceeds this is not one.
    max_person_spread: float


FACENET = Thresholds(
    # lfw_train, best BCubed recall at precision >= 0.98 with no person of 3 identities: radius 0.8 / 1.0 / 1.2 at 5
    # neighbours: 0.601 / 0.637 / 0.633.
    refine_radius=1.0,
    # P / R: 0.11 0.988 / 0.604, 0.12 0.987 / 0.620, 0.13 0.985 / 0.639, 0.14 0.974 / 0.651: precision falls off a
    # cliff past 0.13, so 0.12 keeps a margin.
    linkage=0.12,
    # Every lfw_train identity named: 0.3 gives 370 claims, none wrong; 0.4 638 claims, 4 wrong (precision 0.994);
    # 0.5 896, 15 wrong.
    claim=0.40,
    claim_margin=0.10,
    # FaceNet does not separate people well enough to name faces out of their groups: only the claims above.
    name_radius=0.0,
    name_margin=0.10,
    # Labelled faces' 5th percentile 10.9, background median 5.8; alone it removes the junk person (largest person
    # 48 -> 8 faces).
    min_raw_norm=8.0,
    # Real identities with 3+ photos spread 0.79 at the median and 1.20 at the 99th percentile.
    max_person_spread=1.2,
)
DLIB = Thresholds(
    # lfw_train P / R / R after one click per identity, (radius, linkage): (0.13, 0.02) 0.995 / 0.748 / 0.933,
    # (0.15, 0.02) 0.994 / 0.819 / 0.950, (0.16, 0.02) 0.994 / 0.855 / 0.957, (0.16, 0.025) 0.984, (0.18, 0.02)
    # 0.986: 0.15 and 0.02 keep a step of margin on both before precision falls. lfw_dev 1.000 / 0.864, deepface
    # 1.000 / 0.973 (bench/people_thresholds.py).
    refine_radius=0.15,
    linkage=0.02,
    claim=0.08,
    claim_margin=0.02,
    name_radius=0.022,
    name_margin=0.01,
    # No "unsure" gate: dlib's raw norms do not tell background faces (median 2.76) from labelled ones (5th
    # percentile 2.63), and without it no junk person forms (lfw_train's largest person: 9 faces, one identity).
    min_raw_norm=0.0,
    # Real identities with 3+ photos spread 0.29 at the median, 0.46 at the 99th percentile, 0.55 at most.
    max_person_spread=0.6,
)
BY_DESCRIPTOR = {Descriptor.FACENET: FACENET, Descriptor.DLIB: DLIB}


def thresholds_for(model: str) -> Thresholds:
    """The thresholds for embeddings of a model version (face_embeddings' `model`)."""
    return BY_DESCRIPTOR[descriptor_of(model)]
