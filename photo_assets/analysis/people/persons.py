"""Every face's person: the quality gate, the clustering, the user's word and stable numbers, put together into the
tables person_clusters writes (faces, people, merge suggestions).

The user's edits come first: faces the user placed seed their person (and take part even when the gate would keep
them out), groups holding seeds of two people never merge, a face rejected from a person never joins it, and two
people the user said are not the same are never suggested again. Unnamed groups are "Unknown person NNNNNN" and keep
their number when they grow or are recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from photo_assets.analysis.labels import LabelState
from photo_assets.analysis.people.clustering import claim_unsorted, found_groups, nearest_groups, refine
from photo_assets.analysis.people.index import FaceIndex
from photo_assets.analysis.people.naming import (
    UNKNOWN_NAME,
    person_ids_for_groups,
    previous_members,
    unknown_number,
)
from photo_assets.analysis.people.neighbours import neighbour_table
from photo_assets.analysis.people.suggestions import suggest
from photo_assets.analysis.people.thresholds import DLIB, Thresholds
from photo_assets.analysis.people.vectors import EMBEDDING_DIMS, normalise, sum_by

# Who put a face in its person: the user's edits, another tool's face region (imported), a name the user gave (its
# confirmed faces are close), or clustering.
ASSIGNED_BY_USER, ASSIGNED_BY_FILE, ASSIGNED_BY_NAME, ASSIGNED_BY_AUTO = "user", "file", "name", "auto"

FACE_SCHEMA = pa.schema(
    [
        ("face_id", pa.string()),
        ("photo_id", pa.string()),
        ("person_id", pa.string()),  # null for an unsorted face and for one the user said is not a face
        ("person_name", pa.string()),
        ("assigned_by", pa.string()),
        # Root-mean-square distance (normalised embeddings) to the person's other faces: how typical the face is.
        ("distance", pa.float32()),
        # Why the face was kept out of people (too_small, blurred, profile, unsure); null for every other face.
        ("unsorted_reason", pa.string()),
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
SUGGESTION_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),  # the one to fold in: unknown, or the smaller of two unknown people
        ("other_person_id", pa.string()),
        ("distance", pa.float32()),  # lower = more likely the same person
        ("rank", pa.int64()),  # 1 = ask first, over the whole library
        ("face_id", pa.string()),  # the closest pair of faces, the evidence to show
        ("other_face_id", pa.string()),
        ("face_distance", pa.float32()),  # that pair's refined squared distance
    ]
)


@dataclass(frozen=True)
class PeopleResult:
    faces: pa.Table  # FACE_SCHEMA
    people: pa.Table  # PEOPLE_SCHEMA
    suggestions: pa.Table  # SUGGESTION_SCHEMA
    indexed_faces: int  # faces whose neighbours came from the last index build
    fresh_faces: int  # faces compared by brute force (embedded since that build)


@dataclass(frozen=True)
class _UserWord:
    """The label log's state in positions of the faces being clustered."""

    people: list[str]  # person ids the edits mention, resolved
    seeded: np.ndarray  # per face: code into `people` of the person the user placed it in, or -1
    banned: dict[int, set[int]]  # face position -> codes of people it was rejected from


def _user_word(face_ids: np.ndarray, labels: LabelState) -> _UserWord:
    seeds, bans = labels.seeds(), labels.forbidden()
    people = sorted(set(seeds.values()) | {pid for banned in bans.values() for pid in banned})
    code = {person_id: number for number, person_id in enumerate(people)}
    seeded = np.array([code[seeds[face]] if face in seeds else -1 for face in face_ids.tolist()], dtype=np.int64)
    banned = {
        position: {code[pid] for pid in bans[face]} for position, face in enumerate(face_ids.tolist()) if face in bans
    }
    return _UserWord(people, seeded, banned)


def _cannot_link(ids, word: _UserWord, active: np.ndarray, labels: LabelState, previous: pa.Table | None):
    """Position pairs among the active faces that must end in different groups, beyond faces of one photo: a face
    rejected from a person and every face the user placed there; the faces of two people the user said are not the
    same (their seeds and their faces of the last run)."""
    position = np.full(len(ids), -1, np.int64)
    position[active] = np.arange(len(active))
    seeds_of: dict[int, list[int]] = {}  # person code -> positions the user placed in that person
    for face in active.tolist():
        if word.seeded[face] >= 0:
            seeds_of.setdefault(int(word.seeded[face]), []).append(int(position[face]))
    pairs = [
        (int(position[face]), seed)
        for face, people in word.banned.items() if position[face] >= 0
        for person in people for seed in seeds_of.get(person, ())
    ]
    if labels.not_same:
        members = {word.people[code]: list(faces) for code, faces in seeds_of.items()}
        face_of = {ids[face]: face for face in active.tolist()}
        for face_id, person_id in previous_members(previous).items():
            face = face_of.get(face_id)
            if face is not None and word.seeded[face] < 0:  # a seed already counts for the user's person
                members.setdefault(labels.resolve(person_id), []).append(int(position[face]))
        for pair in labels.not_same:
            first, second = (labels.resolve(person_id) for person_id in sorted(pair))
            pairs += [(a, b) for a in members.get(first, ()) for b in members.get(second, ())]
    return np.array(pairs, np.int64).reshape(-1, 2)


def _group_faces(ids, photos, vectors, reasons, word: _UserWord, labels: LabelState, index, previous,
                 thresholds: Thresholds):
    """A group per face (a face position; -1 for an unsorted face), the refined neighbourhood of the faces that took
    part, and those faces' positions and photo codes."""
    active = np.flatnonzero(np.array([reason is None for reason in reasons], bool) | (word.seeded >= 0))
    photo_codes = np.unique(photos[active].astype(str), return_inverse=True)[1]
    table = neighbour_table(ids[active], vectors[active], index)
    refined = refine(vectors[active], photo_codes, table, thresholds.refine_radius)
    found = found_groups(refined, photo_codes, word.seeded[active], _cannot_link(ids, word, active, labels, previous),
                         thresholds.linkage)
    group = np.full(len(ids), -1, np.int64)
    group[active] = active[found]
    named_people = {code for code, person_id in enumerate(word.people) if labels.names.get(person_id)}
    named_groups = np.unique(group[[face for face in active.tolist() if word.seeded[face] in named_people]])
    claimed = claim_unsorted(group, vectors, named_groups, np.flatnonzero(group < 0), thresholds)
    for face in np.flatnonzero(claimed != group):  # a face rejected from a person is never claimed by it
        banned = word.banned.get(int(face))
        if banned:  # only then the claiming group's people are worth a pass over every face
            seeded_there = word.seeded[group == claimed[face]]
            if banned & set(seeded_there[seeded_there >= 0].tolist()):
                claimed[face] = -1
    by_name = (claimed != group) | _pull_by_name(claimed, refined.vectors, active, ids, word, named_people, labels,
                                                 previous, thresholds)
    return claimed, by_name, refined, active, photo_codes, table


def _pull_by_name(group, refined_vectors, active, ids, word: _UserWord, named_people: set[int], labels: LabelState,
                  previous, thresholds: Thresholds) -> np.ndarray:
    """Names find their faces: a face of an unknown group moves (in `group`) to the named person whose confirmed
    faces hold its nearest one (refined vectors, one per face of `active`), within the name radius and the margin,
    never to a person it was rejected from or said to be not the same as. Returns which faces moved."""
    moved = np.zeros(len(group), bool)
    confirmed = np.flatnonzero(np.isin(word.seeded, sorted(named_people)))
    if thresholds.name_radius <= 0 or not len(confirmed):
        return moved
    named_groups = set(group[confirmed].tolist())
    candidates = np.flatnonzero((group >= 0) & (word.seeded < 0) & ~np.isin(group, sorted(named_groups)))
    refined_row = np.full(len(group), -1, np.int64)  # candidates and confirmed faces all took part in clustering
    refined_row[active] = np.arange(len(active))
    code, best, runner_up = nearest_groups(refined_vectors, refined_row[candidates], refined_row[confirmed],
                                           word.seeded[confirmed])
    near = (best < thresholds.name_radius) & (runner_up - best >= thresholds.name_margin)
    group_of_person = {int(c): int(g) for c, g in zip(word.seeded[confirmed][::-1], group[confirmed][::-1])}
    earlier = previous_members(previous)
    for face, person in zip(candidates[near].tolist(), code[near].tolist()):
        was = earlier.get(ids[face])
        if person in word.banned.get(face, ()) or (was and labels.are_not_same(was, word.people[person])):
            continue
        group[face] = group_of_person[person]
        moved[face] = True
    return moved


def _persons(ids, group, word: _UserWord, previous, labels: LabelState) -> np.ndarray:
    """A person id per face (None for an unsorted one): the user's person for seeded groups, else the previous
    run's number, else a new one."""
    placed = np.flatnonzero(group >= 0)
    earlier = previous_members(previous)
    # Numbers never handed to a new group: anyone's from the last run, and any the user's edits mention.
    taken = set(earlier.values()) | set(labels.names) | set(labels.merged_into) | set(word.people)
    person_of_group = person_ids_for_groups(group[placed], ids[placed], word.seeded[placed], word.people, earlier,
                                            labels, taken)
    person = np.full(len(ids), None, dtype=object)
    person[placed] = [person_of_group[int(root)] for root in group[placed]]
    # An unnamed group matched to its previous number may hold a face rejected from that number: the face leaves,
    # for the number it had on its own last time when it can, so that re-runs agree.
    used = set(person_of_group.values())
    bans = labels.forbidden()
    for position in placed.tolist():
        face_id = ids[position]
        if person[position] in bans.get(face_id, ()):
            own = earlier.get(face_id)
            number = own if own and own not in bans[face_id] and own not in used else unknown_number(face_id, taken)
            person[position] = number
            used.add(number)
            taken.add(number)
    return person


def cluster_people(
    face_ids,
    photo_ids,
    embeddings: np.ndarray,
    labels: LabelState,
    previous: pa.Table | None = None,
    index: FaceIndex | None = None,
    reasons: np.ndarray | None = None,
    thresholds: Thresholds = DLIB,
) -> PeopleResult:
    """Every face gets a person, but unsorted faces (`reasons`, quality_gate's verdict; None: every face passes) and
    those the user said are not faces. `previous` is the last run's faces table, so unnamed groups keep their
    numbers; `index` the last face index build (None: all brute force); `thresholds` the embeddings' descriptor's
    (thresholds.thresholds_for)."""
    face_ids = np.asarray(face_ids, dtype=object)
    photo_ids = np.asarray(photo_ids, dtype=object)
    vectors = normalise(np.asarray(embeddings, dtype=np.float32).reshape(len(face_ids), EMBEDDING_DIMS))
    reasons = np.full(len(face_ids), None, dtype=object) if reasons is None else np.asarray(reasons, dtype=object)
    not_faces = np.array([face_id in labels.not_faces for face_id in face_ids.tolist()], dtype=bool)
    keep = np.flatnonzero(~not_faces)
    ids, photos, kept_vectors, kept_reasons = face_ids[keep], photo_ids[keep], vectors[keep], reasons[keep]
    word = _user_word(ids, labels)
    group, by_name, refined, active, photo_codes, table = _group_faces(ids, photos, kept_vectors, kept_reasons, word,
                                                                       labels, index, previous, thresholds)
    person = _persons(ids, group, word, previous, labels)
    by_file = np.array([face_id in labels.imported_faces for face_id in ids.tolist()], dtype=bool)
    assigned = np.where(word.seeded >= 0, np.where(by_file, ASSIGNED_BY_FILE, ASSIGNED_BY_USER),
                        np.where(by_name, ASSIGNED_BY_NAME, ASSIGNED_BY_AUTO))
    faces, people = _tables(ids, photos, kept_vectors, person, assigned, kept_reasons,
                            face_ids[not_faces], photo_ids[not_faces], labels)
    suggestions = _suggestions(ids[active], person[active], refined, photo_codes, people, labels)
    return PeopleResult(faces, people, suggestions, table.indexed, table.fresh)


def _suggestions(active_ids, active_person, refined, photo_codes, people: pa.Table, labels: LabelState) -> pa.Table:
    """The ranked pairs as person ids, among the faces that took part in clustering; the unknown one (or the smaller
    of two unknown) is the one to fold in."""
    known = np.array([person is not None for person in active_person], bool)
    codes_of, code = np.unique(active_person[known].astype(str), return_inverse=True)
    group = np.full(len(active_person), -1, np.int64)
    group[known] = code
    person_ids = codes_of.tolist()
    where = {person_id: number for number, person_id in enumerate(person_ids)}
    not_same = [
        (where[a], where[b]) for pair in labels.not_same
        for a, b in [tuple(labels.resolve(pid) for pid in sorted(pair))] if a in where and b in where
    ]
    named = np.array([where[pid] for pid in labels.names if pid in where], np.int64)
    found = suggest(refined, photo_codes, group, np.array(not_same, np.int64).reshape(-1, 2), named)
    first, second = found.group, found.other_group
    face, other_face = found.face, found.other_face
    swapped = group[face] != first  # the closest pair is listed in the order of its groups
    face, other_face = np.where(swapped, other_face, face), np.where(swapped, face, other_face)
    size_of = dict(zip(people["person_id"].to_pylist(), people["faces"].to_pylist()))
    sizes = np.array([size_of[person_id] for person_id in person_ids], np.int64)
    is_named = np.isin(np.arange(len(person_ids)), named)
    fold_second = is_named[first] | (~is_named[second] & (sizes[second] < sizes[first]))
    first, second = np.where(fold_second, second, first), np.where(fold_second, first, second)
    face, other_face = np.where(fold_second, other_face, face), np.where(fold_second, face, other_face)
    person_ids = np.asarray(person_ids, dtype=object)
    return pa.table(
        {
            "person_id": pa.array(person_ids[first].tolist(), pa.string()),
            "other_person_id": pa.array(person_ids[second].tolist(), pa.string()),
            "distance": pa.array(found.distance, pa.float32()),
            "rank": pa.array(found.rank, pa.int64()),
            "face_id": pa.array(active_ids[face].tolist(), pa.string()),
            "other_face_id": pa.array(active_ids[other_face].tolist(), pa.string()),
            "face_distance": pa.array(found.closest, pa.float32()),
        },
        schema=SUGGESTION_SCHEMA,
    )


def _tables(ids, photos, vectors, person, assigned, reasons, rejected_ids, rejected_photos, labels):
    """The faces table (placed faces, then unsorted ones, then those that are not faces) and the people table."""
    placed = np.array([p is not None for p in person], bool)
    unsorted = ~placed
    people, person_of = np.unique(person[placed].astype(str), return_inverse=True)
    placed_vectors, placed_ids = vectors[placed].astype(np.float64), ids[placed]
    sizes = np.bincount(person_of, minlength=len(people))
    totals = sum_by(person_of, placed_vectors, len(people))
    similarity = np.einsum("ij,ij->i", placed_vectors, totals[person_of])  # 1 + sum of cosines to the others
    others = sizes[person_of] - 1
    mean_other = np.divide(similarity - 1.0, others, out=np.zeros_like(similarity), where=others > 0)
    distance = np.where(others > 0, np.sqrt(np.maximum(2.0 - 2.0 * mean_other, 0.0)), np.nan).astype(np.float32)
    # Representative: the face closest to all the others (largest summed similarity), ties to the smaller face_id.
    order = np.lexsort((placed_ids.astype(str), -similarity, person_of))
    representative = placed_ids[order[np.searchsorted(person_of[order], np.arange(len(people)))]]
    _, photo_pairs = np.unique(np.char.add(person[placed].astype(str), photos[placed].astype(str)), return_index=True)
    photo_counts = np.bincount(person_of[photo_pairs], minlength=len(people))
    names = [labels.names.get(person_id) for person_id in people.tolist()]
    shown = [name or UNKNOWN_NAME.format(number=person_id) for name, person_id in zip(names, people.tolist())]
    outside = int(unsorted.sum()) + len(rejected_ids)
    faces = pa.table(
        {
            "face_id": pa.array([*placed_ids.tolist(), *ids[unsorted].tolist(), *rejected_ids.tolist()], pa.string()),
            "photo_id": pa.array([*photos[placed].tolist(), *photos[unsorted].tolist(), *rejected_photos.tolist()],
                                 pa.string()),
            "person_id": pa.array([*person[placed].tolist(), *[None] * outside], pa.string()),
            "person_name": pa.array([*(shown[code] for code in person_of.tolist()), *[None] * outside], pa.string()),
            "assigned_by": pa.array(
                [*assigned[placed].tolist(), *[ASSIGNED_BY_AUTO] * int(unsorted.sum()),
                 *[ASSIGNED_BY_USER] * len(rejected_ids)],
                pa.string(),
            ),
            "distance": pa.array(np.r_[distance, np.full(outside, np.nan, np.float32)], pa.float32(), from_pandas=True),
            "unsorted_reason": pa.array([*[None] * int(placed.sum()), *reasons[unsorted].tolist(),
                                         *[None] * len(rejected_ids)], pa.string()),
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
    return faces, people_table.sort_by([("faces", "descending"), ("person_id", "ascending")])
