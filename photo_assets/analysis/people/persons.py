"""Every face's person: the clustering, the user's word and stable numbers put together into two tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from photo_assets.analysis.labels import LabelState
from photo_assets.analysis.people.clustering import (
    LINKAGE_THRESHOLD,
    NEIGHBOUR_MAX_SQUARED,
    agglomerate,
    attach_leftovers,
)
from photo_assets.analysis.people.index import FaceIndex
from photo_assets.analysis.people.naming import (
    UNKNOWN_NAME,
    person_ids_for_groups,
    previous_members,
    unknown_number,
)
from photo_assets.analysis.people.neighbours import NeighbourGraph, neighbour_graph
from photo_assets.analysis.people.vectors import EMBEDDING_DIMS, normalise, sum_by

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


@dataclass(frozen=True)
class PeopleResult:
    faces: pa.Table  # FACE_SCHEMA
    people: pa.Table  # PEOPLE_SCHEMA
    graph: NeighbourGraph


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
    graph = neighbour_graph(ids, kept_vectors, index, NEIGHBOUR_MAX_SQUARED)
    group = agglomerate(kept_vectors, graph, threshold, seeded_person, forbidden)
    group = attach_leftovers(kept_vectors, graph, group, seeded_person, forbidden)
    earlier = previous_members(previous)
    # Numbers never handed to a new group: anyone's from the last run, and any the user's edits mention.
    taken = set(earlier.values()) | set(labels.names) | set(labels.merged_into) | set(people)
    person_of_group = person_ids_for_groups(group, ids, seeded_person, people, earlier, labels, taken)
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
    totals = sum_by(person_of, vectors.astype(np.float64), len(people))
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
