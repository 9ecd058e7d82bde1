"""What the user's people edits mean: the edit records and their replay into the user's word on every face.

The label log (in the storage layer) holds one edit per line: `{"v", "id", "time", "op", "args"}`. It is the only
durable record of what the user said; clustering is recomputed from embeddings and replays the log every time, so
an edit survives re-running any analysis, rebuilding the index, a new embedding model, and deleting and re-adding a
photo. Faces are named by `face_id` (photo content hash + box) and people by `person_id`, never by row position.

Operations (replayed in file order by `replay`):
- rename: name a person. Renaming to a name another person already has merges the two (the other keeps its id).
- merge: fold one person into another.
- move: assign a face to a person (a user assignment beats any clustering).
- reject: a face is not this person (it is never assigned to that person again) or not a face at all.
- not_same: two people are not the same person (a merge suggestion the user declined).
- undo: cancel the latest edit that is still in effect; an undo is itself a record, nothing is ever deleted.
- add_face: a face the user drew on a photo (its box), optionally placed in a person at once.
- import: what another tool's file says a face is (a name from a face region, with its source file), or that it
  says so no more (no name). Imports are weaker than every edit the user made here, whenever made: they are applied
  after the replay, and only to faces the user placed nowhere, never into a person the face was rejected from. A
  face named differently by two sources takes neither name. Undo never cancels an import.
Rename and merge carry a snapshot of the faces the user saw in the group, so the group stays itself after the
embeddings change: those faces are the user's assertion of who this person is.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

# Bumped if a record's shape ever changes; old lines stay readable by their version.
RECORD_VERSION = 1
NEWLINE = b"\n"


class Op(StrEnum):
    RENAME = "rename"
    MERGE = "merge"
    MOVE = "move"
    REJECT = "reject"
    NOT_SAME = "not_same"
    UNDO = "undo"
    ADD_FACE = "add_face"
    IMPORT = "import"


# Written by photo_assets itself from other tools' files, not by the user: never the target of an undo.
MACHINE_OPS = frozenset({Op.IMPORT})
# People get a number of this many digits (unknown people are shown as "Unknown person NNNNNN").
PERSON_DIGITS = 6


def person_number(seed_text: str, taken: set[str]) -> str:
    """A 6-digit person number derived from `seed_text` (the same data gives the same numbers), re-drawn while
    taken."""
    for attempt in range(1000):
        digest = hashlib.sha256(f"{seed_text}#{attempt}".encode()).digest()
        number = str(10 ** (PERSON_DIGITS - 1) + int.from_bytes(digest[:8], "big") % (9 * 10 ** (PERSON_DIGITS - 1)))
        if number not in taken:
            return number
    raise RuntimeError("no free person number")  # 900,000 numbers: unreachable for a real library


class RejectReason(StrEnum):
    NOT_THIS_PERSON = "not_this_person"
    NOT_A_FACE = "not_a_face"


@dataclass(frozen=True)
class LabelEdit:
    edit_id: str
    time: str  # ISO 8601, UTC
    op: Op
    args: dict[str, Any]

    def to_line(self) -> bytes:
        record = {"v": RECORD_VERSION, "id": self.edit_id, "time": self.time, "op": str(self.op), "args": self.args}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + NEWLINE

    @classmethod
    def from_line(cls, line: bytes) -> "LabelEdit":
        record = json.loads(line)
        return cls(record["id"], record["time"], Op(record["op"]), record["args"])


@dataclass(frozen=True)
class LogReading:
    edits: list[LabelEdit]
    # Human-readable notes about lines that could not be read (a torn last line after a crash, a damaged line).
    problems: list[str]


@dataclass
class LabelState:
    """What the log says, after replay: the user's word on names, faces and merges."""

    names: dict[str, str] = field(default_factory=dict)  # person_id -> name (surviving ids only)
    assigned: dict[str, str] = field(default_factory=dict)  # face_id -> person_id the user put it in
    rejected: dict[str, set[str]] = field(default_factory=dict)  # face_id -> people it is not
    not_faces: set[str] = field(default_factory=set)
    merged_into: dict[str, str] = field(default_factory=dict)  # person_id -> the person it was merged into
    not_same: set[frozenset] = field(default_factory=set)  # pairs of person_ids the user said are two people
    added: dict[str, dict[str, Any]] = field(default_factory=dict)  # face_id -> photo_id and box of a face drawn
    imports: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (face_id, source) -> name it says
    imported_faces: set[str] = field(default_factory=set)  # faces placed by an import (after `settle_imports`)

    def resolve(self, person_id: str) -> str:
        """The person an id stands for now, following merges."""
        while person_id in self.merged_into:
            person_id = self.merged_into[person_id]
        return person_id

    def name_of(self, person_id: str) -> str | None:
        return self.names.get(self.resolve(person_id))

    def person_named(self, name: str) -> str | None:
        """The person holding a name, compared without regard to case or surrounding spaces."""
        wanted = name.strip().casefold()
        return next((pid for pid, held in self.names.items() if held.strip().casefold() == wanted), None)

    def seeds(self) -> dict[str, str]:
        """face_id -> resolved person_id for every face the user placed."""
        return {face_id: self.resolve(person_id) for face_id, person_id in self.assigned.items()}

    def forbidden(self) -> dict[str, set[str]]:
        """face_id -> resolved people the face must never be assigned to."""
        return {face_id: {self.resolve(pid) for pid in people} for face_id, people in self.rejected.items()}

    # -- replay steps: one per operation ---------------------------------------------------------------------------

    def _assign(self, face_ids: list[str], person_id: str) -> None:
        for face_id in face_ids:
            if person_id in {self.resolve(pid) for pid in self.rejected.get(face_id, ())}:
                continue  # a snapshot never overrides an explicit "not this person"
            self.assigned[face_id] = person_id
            self.not_faces.discard(face_id)

    def _merge(self, source: str, target: str, face_ids: list[str]) -> None:
        source, target = self.resolve(source), self.resolve(target)
        if source != target:
            self.merged_into[source] = target
            source_name = self.names.pop(source, None)
            if source_name is not None and target not in self.names:
                self.names[target] = source_name
        self._assign(face_ids, target)

    def _rename(self, person_id: str, name: str, face_ids: list[str]) -> None:
        person_id = self.resolve(person_id)
        holder = self.person_named(name)
        if holder is not None and holder != person_id:
            self._merge(person_id, holder, face_ids)
            return
        self.names[person_id] = name.strip()
        self._assign(face_ids, person_id)

    def _move(self, face_id: str, person_id: str, name: str | None) -> None:
        person_id = self.resolve(person_id)
        if face_id in self.rejected:
            self.rejected[face_id] = {pid for pid in self.rejected[face_id] if self.resolve(pid) != person_id}
        self.assigned[face_id] = person_id
        self.not_faces.discard(face_id)
        if name and person_id not in self.names:
            self._rename(person_id, name, [])

    def _reject(self, face_id: str, person_id: str | None, reason: RejectReason) -> None:
        if reason is RejectReason.NOT_A_FACE:
            self.not_faces.add(face_id)
            self.assigned.pop(face_id, None)
            return
        self.rejected.setdefault(face_id, set()).add(person_id)
        if face_id in self.assigned and self.resolve(self.assigned[face_id]) == self.resolve(person_id):
            del self.assigned[face_id]

    def _import(self, face_id: str, source: str, name: str | None) -> None:
        self.imports[(face_id, source)] = name.strip() if name and name.strip() else None

    def _imported_person(self, name: str) -> str:
        """The person a name from a file goes to: whoever holds the name, else a person the name itself numbers (so
        every face a file names Bob meets in one person, and a rename of that person here keeps them there)."""
        holder = self.person_named(name)
        if holder is not None:
            return holder
        person_id = self.resolve(person_number(f"imported:{name.strip().casefold()}", set()))
        if person_id not in self.names:
            self.names[person_id] = name.strip()
        return person_id

    def settle_imports(self) -> None:
        """Place the faces files name, where the user has said nothing about them (called once, after the replay)."""
        said: dict[str, set[str]] = {}
        for (face_id, _), name in self.imports.items():
            if name:
                said.setdefault(face_id, set()).add(name)
        for face_id, names in sorted(said.items()):
            if len({name.casefold() for name in names}) != 1 or face_id in self.assigned or face_id in self.not_faces:
                continue  # two names for one face (a conflict), or the user's word on it
            person_id = self._imported_person(min(names))
            if person_id in {self.resolve(pid) for pid in self.rejected.get(face_id, ())}:
                continue
            self.assigned[face_id] = person_id
            self.imported_faces.add(face_id)

    def apply(self, edit: LabelEdit) -> None:
        args = edit.args
        if edit.op is Op.IMPORT:
            self._import(args["face_id"], args["source"], args.get("name"))
        elif edit.op is Op.ADD_FACE:
            self.added[args["face_id"]] = {key: args[key] for key in ("photo_id", "x", "y", "width", "height")}
            if args.get("person_id"):
                self._move(args["face_id"], args["person_id"], args.get("name"))
        elif edit.op is Op.RENAME:
            self._rename(args["person_id"], args["name"], args.get("face_ids", []))
        elif edit.op is Op.MERGE:
            self._merge(args["source"], args["target"], args.get("face_ids", []))
        elif edit.op is Op.MOVE:
            self._move(args["face_id"], args["person_id"], args.get("name"))
        elif edit.op is Op.REJECT:
            self._reject(args["face_id"], args.get("person_id"), RejectReason(args["reason"]))
        elif edit.op is Op.NOT_SAME:
            self.not_same.add(frozenset((args["person_id"], args["other_person_id"])))

    def are_not_same(self, person_id: str, other_person_id: str) -> bool:
        """The user said these two (followed through merges) are different people."""
        wanted = {self.resolve(person_id), self.resolve(other_person_id)}
        return any({self.resolve(pid) for pid in pair} == wanted for pair in self.not_same)


def active_edits(edits: list[LabelEdit]) -> list[LabelEdit]:
    """The edits still in effect, in order: undo records removed along with the edits they cancel."""
    undone = {edit.args["edit_id"] for edit in edits if edit.op is Op.UNDO}
    return [edit for edit in edits if edit.op is not Op.UNDO and edit.edit_id not in undone]


def replay(edits: list[LabelEdit]) -> LabelState:
    state = LabelState()
    for edit in active_edits(edits):
        state.apply(edit)
    state.settle_imports()
    return state


def new_edit(op: Op, args: dict[str, Any]) -> LabelEdit:
    """A fresh edit record: a random id and the time now."""
    return LabelEdit(uuid.uuid4().hex, datetime.now(timezone.utc).isoformat(), Op(op), args)


def parse_log(payload: bytes) -> LogReading:
    """Every readable edit of a log's bytes; a torn or damaged line is reported and skipped, never fatal."""
    edits, problems = [], []
    lines = payload.split(NEWLINE)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        torn = number == len(lines)  # the last piece has no newline after it: the write never finished
        try:
            edits.append(LabelEdit.from_line(line))
        except (ValueError, KeyError, TypeError) as error:
            what = "torn last line (an append was interrupted)" if torn else f"unreadable line ({error})"
            problems.append(f"line {number}: {what}; skipped")
    return LogReading(edits, problems)
