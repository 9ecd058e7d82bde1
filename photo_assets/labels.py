"""The label log: every people edit the user makes, kept forever in one append-only JSON-lines file.

`<data>/labels/label_log.jsonl` holds one edit per line: `{"v", "id", "time", "op", "args"}`. It is the only
durable record of what the user said; clustering is recomputed from embeddings and replays the log every time, so
an edit survives re-running any analysis, rebuilding the index, a new embedding model, and deleting and re-adding a
photo. Faces are named by `face_id` (photo content hash + box) and people by `person_id`, never by row position.

Appends are atomic and safe across processes: the file is opened with O_APPEND, locked with `flock`, and each edit
is one `write()` of the whole line followed by `fsync`. A crash mid-append leaves at most a torn last line; the
reader skips it and reports it, and the next append starts on a fresh line.

Operations (replayed in file order by `replay`):
- rename: name a person. Renaming to a name another person already has merges the two (the other keeps its id).
- merge: fold one person into another.
- move: assign a face to a person (a user assignment beats any clustering).
- reject: a face is not this person (it is never assigned to that person again) or not a face at all.
- not_same: two people are not the same person (a merge suggestion the user declined).
- undo: cancel the latest edit that is still in effect; an undo is itself a record, nothing is ever deleted.
Rename and merge carry a snapshot of the faces the user saw in the group, so the group stays itself after the
embeddings change: those faces are the user's assertion of who this person is.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

LABEL_LOG_PATH = Path("labels") / "label_log.jsonl"
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

    def apply(self, edit: LabelEdit) -> None:
        args = edit.args
        if edit.op is Op.RENAME:
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
    return state


def _parse(payload: bytes) -> LogReading:
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


class LabelLog:
    """The label log of one data folder."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LABEL_LOG_PATH

    def read(self) -> LogReading:
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            return LogReading([], [])
        return _parse(payload)

    def state(self) -> LabelState:
        return replay(self.read().edits)

    def version(self) -> str:
        """Changes with every edit (for Dagster's data version of the log): the count and the latest edit's id."""
        edits = self.read().edits
        return f"{len(edits)}:{edits[-1].edit_id}" if edits else "empty"

    def _open_locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @staticmethod
    def _write_line(fd: int, line: bytes) -> None:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != NEWLINE:
            line = NEWLINE + line  # close a torn line left by a crash, so this edit parses on its own
        written = os.write(fd, line)
        while written < len(line):  # only on a full disk or a signal; the lock keeps the line whole for readers
            written += os.write(fd, line[written:])
        os.fsync(fd)

    def append(self, op: Op, args: dict[str, Any]) -> LabelEdit:
        edit = LabelEdit(uuid.uuid4().hex, datetime.now(timezone.utc).isoformat(), Op(op), args)
        fd = self._open_locked()
        try:
            self._write_line(fd, edit.to_line())
        finally:
            os.close(fd)  # closing releases the lock
        return edit

    def undo(self) -> LabelEdit | None:
        """Cancel the latest edit still in effect (None when there is nothing to undo). The choice is made under
        the lock, so two simultaneous undos cancel two different edits."""
        fd = self._open_locked()
        try:
            remaining = active_edits(self.read().edits)
            if not remaining:
                return None
            target = remaining[-1]
            edit = LabelEdit(
                uuid.uuid4().hex, datetime.now(timezone.utc).isoformat(), Op.UNDO,
                {"edit_id": target.edit_id, "op": str(target.op)},
            )
            self._write_line(fd, edit.to_line())
            return edit
        finally:
            os.close(fd)

    # -- one method per operation, so callers never spell argument names ---------------------------------------

    def rename(self, person_id: str, name: str, face_ids: list[str]) -> LabelEdit:
        return self.append(Op.RENAME, {"person_id": person_id, "name": name, "face_ids": sorted(face_ids)})

    def merge(self, source: str, target: str, face_ids: list[str]) -> LabelEdit:
        return self.append(Op.MERGE, {"source": source, "target": target, "face_ids": sorted(face_ids)})

    def move(self, face_id: str, person_id: str, name: str | None = None) -> LabelEdit:
        args = {"face_id": face_id, "person_id": person_id} | ({"name": name} if name else {})
        return self.append(Op.MOVE, args)

    def reject(self, face_id: str, person_id: str | None, reason: RejectReason) -> LabelEdit:
        if reason is RejectReason.NOT_THIS_PERSON and person_id is None:
            raise ValueError("rejecting a face from a person needs the person")
        return self.append(Op.REJECT, {"face_id": face_id, "person_id": person_id, "reason": str(reason)})

    def not_same(self, person_id: str, other_person_id: str) -> LabelEdit:
        return self.append(Op.NOT_SAME, {"person_id": person_id, "other_person_id": other_person_id})
