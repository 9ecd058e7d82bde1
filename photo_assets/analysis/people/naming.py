"""Person numbers: unknown people keep their number when their group grows or is recomputed."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis.labels import LabelState, person_number

UNKNOWN_NAME = "Unknown person {number}"


def unknown_number(seed_text: str, taken: set[str]) -> str:
    """A number for an unknown group, derived from its identity (its smallest face_id), re-drawn while taken."""
    return person_number(seed_text, taken)


def previous_members(previous: pa.Table | None) -> dict[str, str]:
    if previous is None or previous.num_rows == 0:
        return {}
    rows = previous.filter(pc.is_valid(previous["person_id"]))
    return dict(zip(rows["face_id"].to_pylist(), rows["person_id"].to_pylist()))


def person_ids_for_groups(
    group: np.ndarray, face_ids: np.ndarray, seeded_person: np.ndarray, people: list[str],
    previous: dict[str, str], labels: LabelState, taken: set[str],
) -> dict[int, str]:
    """group number -> person_id: the user's person for seeded groups, else the previous run's unnamed group that
    shares most faces with it (each previous id goes to one group), else a new number not in `taken` (which
    grows with each number handed out)."""
    result: dict[int, str] = {}
    seeded = np.flatnonzero(seeded_person >= 0)
    for position in seeded:
        result[int(group[position])] = people[seeded_person[position]]
    claimed = set(result.values())
    overlaps: dict[tuple[int, str], int] = {}
    for position, face_id in enumerate(face_ids.tolist()):
        root = int(group[position])
        if root in result or face_id not in previous:
            continue
        earlier = labels.resolve(previous[face_id])
        if earlier not in claimed:
            overlaps[(root, earlier)] = overlaps.get((root, earlier), 0) + 1
    for (root, earlier), _ in sorted(overlaps.items(), key=lambda item: (-item[1], item[0][1], item[0][0])):
        if root not in result and earlier not in claimed:
            result[root] = earlier
            claimed.add(earlier)
    taken |= claimed
    smallest_face: dict[int, str] = {}
    for position, face_id in enumerate(face_ids.tolist()):
        root = int(group[position])
        if root not in result and (root not in smallest_face or face_id < smallest_face[root]):
            smallest_face[root] = face_id
    for root, face_id in sorted(smallest_face.items(), key=lambda item: item[1]):
        result[root] = unknown_number(face_id, taken)
        taken.add(result[root])
    return result
