"""The people editor: the edits a user makes to people (rename, merge, move, reject, undo), as one service that the
command line (`photo-assets people`) and the Dagster `relabel` job both call.

Edits are appended to the label log, the one durable record of what the user said. What the editor shows is the
latest person_clusters output with the log applied on top, so a rename, merge or move shows at once; person_clusters
itself takes the edits into account the next time it runs.

A person is given by its number ("482913"), its full name ("Unknown person 482913") or a name the user gave
("Alice", any case). A face is given by its face_id or a unique prefix of at least FACE_PREFIX_MIN characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from photo_assets.analysis.labels import LabelEdit, LabelState, RejectReason
from photo_assets.analysis.people import ASSIGNED_BY_USER, UNKNOWN_NAME, unknown_number
from photo_assets.storage import DataLayout, LabelLog
from photo_assets.storage.people import load_people_faces

# Short enough to type, long enough to be unique among a library's faces.
FACE_PREFIX_MIN = 6
UNKNOWN_PATTERN = re.compile(r"^\s*unknown person\s+(\d+)\s*$", re.IGNORECASE)


class PeopleError(ValueError):
    """A request that cannot be carried out, with a message meant for the user."""


@dataclass(frozen=True)
class PersonFaces:
    person_id: str
    name: str
    face_ids: list[str]


class PeopleEditor:
    """The latest people of a data folder with the label log applied, and the edits a user can make."""

    def __init__(self, layout: DataLayout):
        self.layout = layout
        self.log = LabelLog(layout.label_log)
        faces = load_people_faces(layout)
        if faces is None:
            raise PeopleError(f"no people yet ({layout.people_faces} is missing): materialize person_clusters first")
        self.labels: LabelState = self.log.state()
        self.faces = effective_faces(faces, self.labels)

    # -- finding ---------------------------------------------------------------------------------------------------

    def person(self, text: str) -> PersonFaces:
        wanted = text.strip()
        numbered = UNKNOWN_PATTERN.match(wanted)
        candidates = {self.labels.resolve(numbered.group(1) if numbered else wanted)}
        named = self.labels.person_named(wanted)
        if named:
            candidates.add(named)
        people = set(self.faces["person_id"].drop_null().to_pylist())
        found = [person_id for person_id in candidates if person_id in people]
        if not found:
            raise PeopleError(f"no person {text!r}")
        if len(found) > 1:
            raise PeopleError(f"{text!r} could be any of {', '.join(sorted(found))}: give the number")
        rows = self.faces.filter(pc.equal(self.faces["person_id"], found[0]))
        return PersonFaces(found[0], rows["person_name"][0].as_py(), rows["face_id"].to_pylist())

    def face(self, text: str) -> dict:
        wanted = text.strip().lower()
        if len(wanted) < FACE_PREFIX_MIN:
            raise PeopleError(f"give at least {FACE_PREFIX_MIN} characters of the face id")
        rows = self.faces.filter(pc.starts_with(self.faces["face_id"], wanted))
        if rows.num_rows != 1:
            raise PeopleError(f"no face {text!r}" if not rows.num_rows else f"{text!r} matches {rows.num_rows} faces")
        return rows.to_pylist()[0]

    def _new_person_id(self, seed: str) -> str:
        taken = set(self.faces["person_id"].drop_null().to_pylist()) | set(self.labels.names)
        return unknown_number(f"new-person:{seed}", taken | set(self.labels.merged_into))

    # -- editing ---------------------------------------------------------------------------------------------------

    def rename(self, person: str, name: str) -> LabelEdit:
        if not name.strip():
            raise PeopleError("a name cannot be empty")
        if UNKNOWN_PATTERN.match(name):
            raise PeopleError(f"{name!r} is how unnamed people are shown; choose another name")
        found = self.person(person)
        return self.log.rename(found.person_id, name.strip(), found.face_ids)

    def merge(self, source: str, target: str) -> LabelEdit:
        merged, kept = self.person(source), self.person(target)
        if merged.person_id == kept.person_id:
            raise PeopleError(f"{source!r} and {target!r} are the same person")
        return self.log.merge(merged.person_id, kept.person_id, merged.face_ids + kept.face_ids)

    def move(self, face: str, person: str) -> LabelEdit:
        """Move a face to a person; a name nobody has yet starts a new person with that name."""
        row = self.face(face)
        try:
            target, name = self.person(person).person_id, None
        except PeopleError:
            if UNKNOWN_PATTERN.match(person) or person.strip().isdigit():
                raise
            target, name = self._new_person_id(f"{row['face_id']}:{person}"), person.strip()
        return self.log.move(row["face_id"], target, name)

    def move_to_new_person(self, face: str) -> LabelEdit:
        row = self.face(face)
        return self.log.move(row["face_id"], self._new_person_id(row["face_id"]))

    def reject(self, face: str, not_a_face: bool = False) -> LabelEdit:
        row = self.face(face)
        if not_a_face:
            return self.log.reject(row["face_id"], None, RejectReason.NOT_A_FACE)
        if row["person_id"] is None:
            raise PeopleError(f"face {row['face_id']} is already marked as not a face")
        return self.log.reject(row["face_id"], row["person_id"], RejectReason.NOT_THIS_PERSON)

    def not_same(self, person: str, other: str) -> LabelEdit:
        """Two people are not the same person (a merge suggestion declined)."""
        first, second = self.person(person), self.person(other)
        if first.person_id == second.person_id:
            raise PeopleError(f"{person!r} and {other!r} are already the same person")
        return self.log.not_same(first.person_id, second.person_id)

    def approve(self, face: str) -> LabelEdit:
        """Confirm a face's current person: a move to where it is, so it becomes the user's word (a seed)."""
        row = self.face(face)
        if row["person_id"] is None:
            raise PeopleError(f"face {row['face_id']} has no person to confirm: move it to one")
        return self.log.move(row["face_id"], row["person_id"])


def effective_faces(faces: pa.Table, labels: LabelState) -> pa.Table:
    """The faces table as it will be once person_clusters replays the log: merges followed, names applied, placed
    faces in their person, rejected faces out of theirs (shown without a person until the next run)."""
    seeds, barred = labels.seeds(), labels.forbidden()
    people, names, assigned = [], [], []
    for face_id, person_id, by in zip(
        faces["face_id"].to_pylist(), faces["person_id"].to_pylist(), faces["assigned_by"].to_pylist()
    ):
        if face_id in labels.not_faces:
            person_id = None
        elif face_id in seeds:
            person_id, by = seeds[face_id], ASSIGNED_BY_USER
        elif person_id is not None:
            person_id = labels.resolve(person_id)
            if person_id in barred.get(face_id, ()):
                person_id = None
        people.append(person_id)
        names.append(None if person_id is None else labels.names.get(person_id, UNKNOWN_NAME.format(number=person_id)))
        assigned.append(by)
    replaced = {"person_id": people, "person_name": names, "assigned_by": assigned}
    for column, values in replaced.items():
        faces = faces.set_column(faces.schema.get_field_index(column), column, pa.array(values, pa.string()))
    return faces
