"""How the people thresholds of a descriptor were chosen: sweeps them on the labelled face sets, through the faces
the real pipeline found, and prints what each choice gives.

    .venv/bin/python bench/people_thresholds.py [--descriptor dlib|facenet] [--sets lfw_train lfw_dev deepface]
        [--work DIR] [--radius R ...] [--linkage L ...] [--norm N ...]

Each set goes through `photo-assets run` once with that descriptor (kept in DIR/<set>, as bench/people_quality.py
does); then, in this process, for every combination asked: the quality gate's verdicts, person_clusters' method
(cluster_people) with those thresholds, and the scores (pairwise precision, BCubed recall, persons of 3+
identities, largest person, recall after one simulated click per identity down the suggestions). Also printed: the
raw descriptor norms of labelled faces against background faces (the "unsure" gate), the spread of real identities
(the implausible-person check), and how far a named person's claim reaches at each radius (every identity named).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools and bench, when run as a script

from bench.people_quality import PROJECT_DIR, analyse_set, load_pipeline_faces  # noqa: E402
from devtools.scoring import HEADER, quality, row  # noqa: E402
from photo_assets.analysis.descriptors import Descriptor  # noqa: E402
from photo_assets.analysis.labels import LabelState, Op, new_edit, replay  # noqa: E402
from photo_assets.analysis.people import cluster_people, normalise  # noqa: E402
from photo_assets.analysis.people.quality import quality_gate  # noqa: E402
from photo_assets.analysis.people.thresholds import BY_DESCRIPTOR  # noqa: E402
from photo_assets.settings import FACE_DESCRIPTOR_ENV  # noqa: E402
from photo_assets.storage import DataStore  # noqa: E402
from photo_assets.storage.layout import FACE_DETECTIONS  # noqa: E402

NORM_PERCENTILES = (1, 5, 25, 50, 75)


def gate_columns(layout, face_ids: np.ndarray) -> dict[str, np.ndarray]:
    detections = DataStore(layout).read_all(FACE_DETECTIONS, columns=["face_id", "width", "height", "eye_ratio",
                                                                       "sharpness"]).to_pylist()
    by_face = {row["face_id"]: row for row in detections}
    return {name: np.array([by_face[face][name] for face in face_ids.tolist()], np.float64)
            for name in ("width", "height", "eye_ratio", "sharpness")}


def print_norms(faces) -> None:
    norms = np.linalg.norm(faces.embeddings, axis=1)
    labelled = np.array([t is not None for t in faces.truth.tolist()])
    for label, chosen in (("labelled faces", labelled), ("background faces", ~labelled)):
        figures = " ".join(f"p{p}={np.percentile(norms[chosen], p):.3f}" for p in NORM_PERCENTILES)
        print(f"raw norm, {label} ({int(chosen.sum())}): {figures}")


def print_spread(faces) -> None:
    """Each identity with 3+ labelled faces: the mean distance of its faces to the identity's other faces."""
    vectors = normalise(faces.embeddings.astype(np.float32))
    spreads = []
    for identity in sorted({t for t in faces.truth.tolist() if t is not None}):
        members = np.flatnonzero(faces.truth == identity)
        if len(members) >= 3:
            squared = np.maximum(2 - 2 * vectors[members] @ vectors[members].T, 0)
            spreads.append(np.mean(np.sqrt(squared.sum(1) / (len(members) - 1))))
    figures = " ".join(f"p{p}={np.percentile(spreads, p):.3f}" for p in (50, 90, 99, 100))
    print(f"spread of real identities with 3+ faces ({len(spreads)}): {figures}")


def sweep(faces, layout, base, radii, linkages, norms) -> None:
    columns = gate_columns(layout, faces.face_ids)
    print(HEADER)
    for radius, linkage, norm in itertools.product(radii, linkages, norms):
        thresholds = replace(base, refine_radius=radius, linkage=linkage, min_raw_norm=norm)
        reasons = quality_gate(columns["width"], columns["height"], columns["eye_ratio"], columns["sharpness"],
                               faces.embeddings, norm)
        result = cluster_people(faces.face_ids, faces.photo_ids, faces.embeddings, LabelState(), reasons=reasons,
                                thresholds=thresholds)
        person_of = dict(zip(result.faces["face_id"].to_pylist(), result.faces["person_id"].to_pylist()))
        person = np.array([person_of.get(face) for face in faces.face_ids.tolist()], dtype=object)
        suggestions = list(zip(result.suggestions["person_id"].to_pylist(),
                               result.suggestions["other_person_id"].to_pylist()))
        scores = quality(faces.truth, person, faces.photo_ids, reasons, suggestions)
        print(row(f"radius {radius} linkage {linkage} norm {norm}", scores), flush=True)


def naming_protocol(faces) -> np.ndarray:
    """Which faces the user's library holds at first: the first half of each identity's photos (by content hash;
    strangers: every other one) with their background faces."""
    photos_of: dict[str, list[str]] = {}
    for photo, identity in sorted((p, t) for p, t in zip(faces.photo_ids.tolist(), faces.truth.tolist()) if t):
        photos_of.setdefault(identity, []).append(photo)
    first = {photo for photos in photos_of.values() for photo in photos[: max(1, (len(photos) + 1) // 2)]}
    strangers = sorted(photos[0] for photos in photos_of.values() if len(photos) == 1)
    first -= set(strangers[1::2])
    return np.array([photo in first for photo in faces.photo_ids.tolist()])


def print_naming(faces, layout, base, radii) -> None:
    """Run, name the people, add the rest of their photos and strangers, run again: how many new faces of named
    people carry their name, and how many named faces carry a wrong one, at each name radius."""
    columns = gate_columns(layout, faces.face_ids)
    reasons = quality_gate(columns["width"], columns["height"], columns["eye_ratio"], columns["sharpness"],
                           faces.embeddings, base.min_raw_norm)
    early = naming_protocol(faces)
    before = cluster_people(faces.face_ids[early], faces.photo_ids[early], faces.embeddings[early], LabelState(),
                            reasons=reasons[early], thresholds=base)
    labels = name_people(faces, early, before)
    named = set(labels.names.values())
    for radius in radii:
        thresholds = replace(base, name_radius=radius)
        after = cluster_people(faces.face_ids, faces.photo_ids, faces.embeddings, labels, previous=before.faces,
                               reasons=reasons, thresholds=thresholds)
        name_of = dict(zip(after.faces["face_id"].to_pylist(), after.faces["person_name"].to_pylist()))
        pulled = {face for face, by in zip(after.faces["face_id"].to_pylist(), after.faces["assigned_by"].to_pylist())
                  if by == "name"}
        truth_of = dict(zip(faces.face_ids.tolist(), faces.truth.tolist()))
        new_named = [(truth, name_of.get(face)) for face, truth, old in
                     zip(faces.face_ids.tolist(), faces.truth.tolist(), early.tolist()) if not old and truth in named]
        carrying = [(truth_of[face], name) for face, name in name_of.items()
                    if name in named and truth_of.get(face) is not None]
        pulled_labelled = [(truth_of[face], name_of[face]) for face in pulled if truth_of.get(face) is not None]
        right = sum(truth == name for truth, name in new_named) / max(1, len(new_named))
        wrong = sum(truth != name for truth, name in carrying) / max(1, len(carrying))
        pulled_wrong = sum(truth != name for truth, name in pulled_labelled)
        print_suggestion_answers(after, truth_of, set(labels.names))
        print(f"name radius {radius}: new faces of named people named right {right:.3f} ({len(new_named)}); named "
              f"faces named wrong {wrong:.4f} ({len(carrying)}); assigned by name {len(pulled)}, of them labelled "
              f"{len(pulled_labelled)}, wrong {pulled_wrong}", flush=True)


# Score buckets of the suggestions, to see how often a pair is the same person (suggestions.NAMED_FIRST_SCORE).
SCORE_BUCKETS = (0.0, 0.2, 0.3, 0.5, 0.7)


def print_suggestion_answers(clustered, truth_of: dict, named_people: set[str]) -> None:
    """The share of "yes" (both persons mostly one identity) by score, for pairs with a named person and pairs of
    two unknown people."""
    identities: dict[str, list[str]] = {}
    for face, person in zip(clustered.faces["face_id"].to_pylist(), clustered.faces["person_id"].to_pylist()):
        if person is not None and truth_of.get(face) is not None:
            identities.setdefault(person, []).append(truth_of[face])
    main = {person: max(set(found), key=found.count) for person, found in identities.items()}
    for kind in ("named", "unknown"):
        rows = [row for row in clustered.suggestions.to_pylist()
                if ((row["person_id"] in named_people or row["other_person_id"] in named_people) == (kind == "named"))]
        figures = []
        for low, high in zip(SCORE_BUCKETS, SCORE_BUCKETS[1:]):
            chosen = [row for row in rows if low <= row["distance"] < high]
            same = sum(main.get(row["person_id"]) is not None and main.get(row["person_id"]) == main.get(
                row["other_person_id"]) for row in chosen)
            figures.append(f"{low}-{high}: {same / len(chosen) if chosen else float('nan'):.2f} of {len(chosen)}")
        print(f"suggestions with {'a named person' if kind == 'named' else 'two unknown people'}, yes by score: "
              + ", ".join(figures))


def name_people(faces, early: np.ndarray, clustered) -> LabelState:
    """The user's names: each identity seen 2+ times named on the person holding most of its labelled faces (as a
    user renames a person they recognise; the edit's snapshot is the faces shown)."""
    truth_of = dict(zip(faces.face_ids[early].tolist(), faces.truth[early].tolist()))
    members: dict[str, list[str]] = {}
    for face, person in zip(clustered.faces["face_id"].to_pylist(), clustered.faces["person_id"].to_pylist()):
        if person is not None:
            members.setdefault(person, []).append(face)
    votes: dict[str, dict[str, int]] = {}
    for person, face_ids in members.items():
        for face in face_ids:
            if truth_of.get(face) is not None:
                votes.setdefault(truth_of[face], {}).setdefault(person, 0)
                votes[truth_of[face]][person] += 1
    seen = {identity: count for identity, count in
            zip(*np.unique([t for t in faces.truth.tolist() if t is not None], return_counts=True))}
    edits = [new_edit(Op.RENAME, {"person_id": max(people, key=people.get), "name": identity,
                                  "face_ids": sorted(members[max(people, key=people.get)])})
             for identity, people in sorted(votes.items()) if seen[identity] >= 2]
    return replay(edits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--descriptor", default=Descriptor.DLIB, choices=list(Descriptor))
    parser.add_argument("--sets", nargs="+", default=["lfw_train", "lfw_dev", "deepface"])
    parser.add_argument("--work", type=Path, default=None, help="default: bench-data/people-<descriptor>")
    parser.add_argument("--radius", type=float, nargs="+", default=None)
    parser.add_argument("--linkage", type=float, nargs="+", default=None)
    parser.add_argument("--norm", type=float, nargs="+", default=None)
    parser.add_argument("--name-radius", type=float, nargs="+", default=None)
    args = parser.parse_args()
    descriptor = Descriptor(args.descriptor)
    base = BY_DESCRIPTOR[descriptor]
    os.environ[FACE_DESCRIPTOR_ENV] = descriptor.value  # the runs analyse with this descriptor
    work = args.work or PROJECT_DIR / "bench-data" / f"people-{descriptor}"
    for name in args.sets:
        layout = analyse_set(name, work)
        faces = load_pipeline_faces(name, layout)
        print(f"\n{name} ({descriptor}): {len(faces.face_ids)} faces")
        print_norms(faces)
        print_spread(faces)
        sweep(faces, layout, base, args.radius or [base.refine_radius], args.linkage or [base.linkage],
              args.norm or [base.min_raw_norm])
        print_naming(faces, layout, base, args.name_radius or [base.name_radius])


if __name__ == "__main__":
    main()
